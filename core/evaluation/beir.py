"""BEIR-layout collections (corpus, queries, qrels) and TREC run files."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError

#: A ranked list per query: ``query id -> [(doc id, score), ...]``, best first.
Run = dict[str, list[tuple[str, float]]]
#: Relevance judgements: ``query id -> {doc id: grade}``.
Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR folder in memory: documents, queries and one split's judgements."""

    name: str
    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: Qrels
    #: The split the judgements are for (None when a qrels file was named instead).
    split: str | None = None
    #: The qrels file the judgements were read from.
    qrels_file: str | None = None

    def document_text(self, doc_id: str) -> str:
        """The text a reranker sees: ``title + " " + text`` (just the text when there is no title)."""
        doc = self.corpus[doc_id]
        return f"{doc['title']} {doc['text']}".strip()

    def judged_query_ids(self) -> list[str]:
        """Queries that have both a text and judgements, in ``queries.jsonl`` order."""
        return [qid for qid in self.queries if qid in self.qrels]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise InvalidInputError(
                    f"{path}:{number}: expected a JSON object, got {type(record).__name__}"
                )
            yield number, record


def _field(record: dict[str, Any], key: str, path: Path, number: int, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInputError(f"{path}:{number}: field {key!r} must be a string, got {value!r}")
    return str(value)


def read_corpus(path: Path) -> dict[str, dict[str, str]]:
    """``corpus.jsonl``: ``_id``, optional ``title``, ``text``."""
    corpus: dict[str, dict[str, str]] = {}
    for number, record in _jsonl(path):
        doc_id = _field(record, "_id", path, number)
        title = _field(record, "title", path, number, required=False)
        corpus[doc_id] = {"title": title, "text": _field(record, "text", path, number)}
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    """``queries.jsonl``: ``_id``, ``text``."""
    return {
        _field(record, "_id", path, number): _field(record, "text", path, number)
        for number, record in _jsonl(path)
    }


def read_qrels(path: str | Path) -> Qrels:
    """A BEIR qrels TSV (``query-id corpus-id score``, header optional) or a TREC qrels file (4 columns)."""
    path = Path(path)
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or (number == 1 and parts[0] == "query-id"):
                continue
            if len(parts) == 4:
                parts = [parts[0], parts[2], parts[3]]
            if len(parts) != 3:
                raise InvalidInputError(f"{path}:{number}: expected 'query-id corpus-id score', got {line!r}")
            try:
                grade = int(float(parts[2]))
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{number}: score {parts[2]!r} is not a number") from exc
            qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


def find_qrels(folder: Path, split: str) -> Path:
    """``qrels/<split>.tsv``; never another split's file (the error names the splits there are)."""
    wanted = folder / "qrels" / f"{split}.tsv"
    if wanted.is_file():
        return wanted
    found = sorted(p.name for p in (folder / "qrels").glob("*.tsv"))
    hint = f"; choose a split with --split ({', '.join(Path(n).stem for n in found)})" if found else ""
    raise InvalidInputError(
        f"{folder}: no qrels/{split}.tsv for split {split!r}; qrels/ holds {found or 'no TSV file'}"
        f"{hint} or name a file with --qrels"
    )


def load_beir(folder: str | Path, split: str = "test", qrels_file: str | Path | None = None) -> BeirDataset:
    """Load a BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (or ``qrels_file``)."""
    root = Path(folder)
    for required in ("corpus.jsonl", "queries.jsonl"):
        if not (root / required).is_file():
            raise InvalidInputError(f"{root} is not a BEIR folder: {required} is missing")
    qrels_path = Path(qrels_file) if qrels_file is not None else find_qrels(root, split)
    return BeirDataset(
        name=root.resolve().name,
        corpus=read_corpus(root / "corpus.jsonl"),
        queries=read_queries(root / "queries.jsonl"),
        qrels=read_qrels(qrels_path),
        split=None if qrels_file is not None else split,
        qrels_file=str(qrels_path),
    )


def read_run(path: str | Path) -> Run:
    """A TREC run file (``qid Q0 docid rank score tag``), each query's list sorted best first.

    Candidates are ordered by score (descending), then by the file's rank column; a document
    listed twice for a query keeps its best entry.
    """
    path = Path(path)
    rows: dict[str, list[tuple[float, int, str]]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise InvalidInputError(
                    f"{path}:{number}: expected 'qid Q0 docid rank score tag', got {line!r}"
                )
            try:
                rank, score = int(parts[3]), float(parts[4])
            except ValueError as exc:
                raise InvalidInputError(
                    f"{path}:{number}: rank and score must be numbers, got {line!r}"
                ) from exc
            rows.setdefault(parts[0], []).append((score, rank, parts[2]))
    run: Run = {}
    for qid, entries in rows.items():
        entries.sort(key=lambda e: (-e[0], e[1]))
        ranked: dict[str, float] = {}
        for score, _, doc in entries:
            ranked.setdefault(doc, score)
        run[qid] = list(ranked.items())
    return run


def write_run(
    path: str | Path, run: Mapping[str, Sequence[tuple[str, float]]], tag: str = "rerank-layer"
) -> Path:
    """Write ``run`` as a TREC run file, ranks 1..n in list order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for qid, ranked in run.items():
            for rank, (doc_id, score) in enumerate(ranked, 1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    return path
