"""Batch inputs and outputs: JSON lines, Parquet, a BEIR folder with a first-stage TREC run, TREC runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from core.base import ERROR_KEY, RAW_SCORE_KEY, SCORE_KEY
from core.batch.rows import RANK_KEY, Shape
from core.deps import require
from core.errors import InvalidInputError
from core.evaluation.beir import BeirDataset, read_corpus, read_queries, read_run, write_run
from core.evaluation.runner import merge_run

Format = Literal["jsonl", "parquet", "beir", "trec"]
#: File suffixes and the format each one names.
SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".run": "trec",
    ".trec": "trec",
}
#: How Parquet support is named in a missing-dependency error.
PARQUET = "batch (Parquet files)"


def input_format(path: Path, run: Path | None) -> Format:
    """The format of an input: a BEIR folder (with ``run``), JSON lines or Parquet, by suffix."""
    if path.is_dir():
        if run is None:
            raise InvalidInputError(f"{path} is a folder: a BEIR folder needs a first-stage run (--run)")
        return "beir"
    if run is not None:
        raise InvalidInputError(f"--run goes with a BEIR folder as input, not with the file {path}")
    found = SUFFIXES.get(path.suffix.lower())
    if found not in ("jsonl", "parquet"):
        raise InvalidInputError(
            f"input {path}: expected a .jsonl or .parquet file, or a BEIR folder with --run"
        )
    return found


def output_format(path: Path) -> Format:
    """The format an output path asks for by its suffix: .jsonl, .parquet or a TREC run (.run, .trec)."""
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInputError(f"output {path}: expected a .jsonl, .parquet, .run or .trec file name")
    return found


def input_files(path: Path, fmt: Format, run: Path | None) -> list[Path]:
    """The files an input is read from (what its fingerprint covers)."""
    if fmt == "beir":
        assert run is not None
        return [path / "corpus.jsonl", path / "queries.jsonl", run]
    return [path]


def read_input(path: Path, fmt: Format, run: Path | None = None) -> list[Any]:
    """The rows of an input; a BEIR folder with a run becomes flat rows (see :func:`read_beir_run`)."""
    if fmt == "beir":
        assert run is not None
        return read_beir_run(path, run)
    if fmt == "parquet":
        pq = require("pyarrow.parquet", extra="batch", provider=PARQUET)
        rows: list[Any] = pq.read_table(path).to_pylist()
        return rows
    return read_jsonl(path)


def read_jsonl(path: Path) -> list[Any]:
    """Every non-blank line of a JSON-lines file, parsed; a bad line is an error naming file and line."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return rows


def read_beir_run(folder: Path, run: Path) -> list[dict[str, Any]]:
    """Flat rows from a BEIR folder and a first-stage run, candidates best first.

    Each row: ``query_id``, ``doc_id``, ``query``, ``text`` (title + text, as ``eval`` reads it),
    ``score`` (first-stage) and ``first_stage_rank``. A query or document the folder lacks gives a
    row without ``query`` or ``text``, reported as a bad row.
    """
    for required in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / required).is_file():
            raise InvalidInputError(f"{folder} is not a BEIR folder: {required} is missing")
    dataset = BeirDataset(
        folder.name, read_corpus(folder / "corpus.jsonl"), read_queries(folder / "queries.jsonl"), {}
    )
    rows = []
    for qid, ranked in read_run(run).items():
        for rank, (doc_id, score) in enumerate(ranked, 1):
            row: dict[str, Any] = {"query_id": qid, "doc_id": doc_id}
            if qid in dataset.queries:
                row["query"] = dataset.queries[qid]
            if doc_id in dataset.corpus:
                row["text"] = dataset.document_text(doc_id)
            rows.append(row | {"score": score, "first_stage_rank": rank})
    return rows


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    """Rows as JSON lines (values JSON cannot hold, such as dates, written as strings)."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def arrow_table(rows: Sequence[Mapping[str, Any]], shape: Shape) -> Any:
    """A pyarrow table of output rows, the four output columns typed (lists for grouped rows)."""
    pa = require("pyarrow", extra="batch", provider=PARQUET)
    inferred = pa.Table.from_pylist(list(rows)).schema
    return pa.Table.from_pylist(list(rows), schema=output_schema(inferred, shape))


def output_schema(schema: Any, shape: Shape) -> Any:
    """``schema`` with the output columns typed: float scores, integer ranks, string errors."""
    pa = require("pyarrow", extra="batch", provider=PARQUET)

    def typed(kind: Any) -> Any:
        return pa.list_(kind) if shape == "grouped" else kind

    wanted = {
        SCORE_KEY: typed(pa.float64()),
        RAW_SCORE_KEY: typed(pa.float64()),
        RANK_KEY: typed(pa.int64()),
        ERROR_KEY: pa.string(),
    }
    fields = [pa.field(f.name, wanted[f.name]) if f.name in wanted else f for f in schema]
    names = {f.name for f in fields}
    fields += [pa.field(name, kind) for name, kind in wanted.items() if name not in names]
    return pa.schema(fields)


def write_parquet(path: Path, tables: Iterable[Any]) -> None:
    """Write pyarrow tables one after another into one Parquet file (schemas unified, nulls promoted)."""
    pa = require("pyarrow", extra="batch", provider=PARQUET)
    pq = require("pyarrow.parquet", extra="batch", provider=PARQUET)
    parts = list(tables)
    if not parts:
        pq.write_table(pa.table({}), path)
        return
    schema = pa.unify_schemas([t.schema for t in parts], promote_options="permissive")
    with pq.ParquetWriter(path, schema) as writer:
        for table in parts:
            writer.write_table(table.cast(schema) if table.schema != schema else table)


def trec_run(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """A TREC run from output rows: each query's documents in rank order.

    Scored documents keep their ``rerank_score``; the ones without a score (a failed query kept in
    first-stage order, a bad row) follow, scored below them in their order. Grouped rows need
    ``query_id`` and ``doc_ids``; flat rows ``query_id`` and ``doc_id``. Rows without them are
    left out of the run (they stay in JSON-lines or Parquet outputs).
    """
    ranked: dict[str, list[tuple[int, str, float | None]]] = {}
    for row in rows:
        qid = row.get("query_id")
        if qid is not None:
            ranked.setdefault(str(qid), []).extend(_run_entries(row))
    run: dict[str, list[tuple[str, float]]] = {}
    for qid, entries in ranked.items():
        entries.sort(key=lambda e: e[0])
        head = [(doc, float(score)) for _, doc, score in entries if score is not None]
        rest = [(doc, 0.0) for _, doc, score in entries if score is None]
        run[qid] = merge_run(head, rest)
    return run


def _run_entries(row: Mapping[str, Any]) -> list[tuple[int, str, float | None]]:
    """(rank, doc id, score) of each document a row ranks: a grouped row's ``doc_ids``, a flat ``doc_id``."""
    ids, scores, ranks = row.get("doc_ids"), row.get(SCORE_KEY), row.get(RANK_KEY)
    if "documents" in row and isinstance(ids, list):
        ranks = ranks if isinstance(ranks, list) else range(1, len(ids) + 1)
        scores = scores if isinstance(scores, list) else [None] * len(ids)
        return [(int(r), str(d), s) for r, d, s in zip(ranks, ids, scores, strict=False)]
    if row.get("doc_id") is not None and isinstance(ranks, int):
        return [(ranks, str(row["doc_id"]), scores)]
    return []


def write_trec(path: Path, rows: Iterable[Mapping[str, Any]], tag: str = "rerank-layer") -> None:
    """Write output rows as a TREC run file (see :func:`trec_run`)."""
    write_run(path, trec_run(rows), tag=tag)
