"""``rerank-layer batch``: read a table, rerank it shard by shard on an engine, write the output.

Shards are written under ``OUTPUT.shards/`` with a manifest (see :mod:`core.batch.shards`); a rerun
with the same input and spec skips the finished shards, then the output file is assembled from all
of them.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.base import BaseReranker
from core.batch.formats import (
    Format,
    arrow_table,
    input_files,
    input_format,
    output_format,
    read_input,
    read_jsonl,
    write_jsonl,
    write_parquet,
    write_trec,
)
from core.batch.progress import Progress
from core.batch.rows import Outcome, Plan, Shape, Task, check_shape, compose, plan_rows
from core.batch.shards import ShardStore, file_digest, plan_shards
from core.batch.table import build_reranker, default_workers, rank_tasks
from core.deps import require
from core.errors import InvalidInputError
from core.registry import create_reranker
from core.secrets import masked
from core.specs import DEFAULT_SPEC, Spec, parse_spec

logger = logging.getLogger("rerank_layer")

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
#: Pairs per shard by default: minutes of work for a CPU model, seconds for a GPU.
DEFAULT_SHARD_PAIRS = 10_000


@dataclass
class BatchSummary:
    """What a batch run did."""

    output: Path
    engine: Engine
    rows: int
    pairs: int
    shards: int
    skipped: int
    bad_rows: int
    failed_queries: int
    wall_s: float

    def describe(self) -> str:
        """One line for the terminal."""
        return (
            f"wrote {self.output}: {self.rows} rows, {self.pairs} pairs, {self.shards} shards "
            f"({self.skipped} already done), {self.bad_rows} bad rows, "
            f"{self.failed_queries} queries kept in first-stage order, {self.wall_s:.1f}s ({self.engine})"
        )


def run_batch(
    source: str | Path,
    output: str | Path,
    spec: Spec | None = None,
    *,
    run: str | Path | None = None,
    engine: Engine = "local",
    workers: int | None = None,
    shape: Shape | None = None,
    shard_pairs: int = DEFAULT_SHARD_PAIRS,
    batch_pairs: int | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    restart: bool = False,
    progress: bool = True,
    stats_dir: str | Path | None = None,
) -> BatchSummary:
    """Rerank the rows of ``source`` into ``output``, resumably.

    ``source``: a .jsonl or .parquet file of grouped or flat rows, or a BEIR folder with a
    first-stage TREC ``run``. ``output``: .jsonl, .parquet, or a TREC run (.run, .trec).
    ``engine="local"`` reranks in this process (``workers``: queries at once, for API providers);
    ``engine="ray"`` on ``workers`` Ray actors of ``num_cpus`` / ``num_gpus`` each, at the cluster
    in ``RAY_ADDRESS`` or on a local Ray started for the run.
    """
    start = time.perf_counter()
    if engine not in ENGINES:
        raise InvalidInputError(f"engine must be one of {ENGINES}, got {engine!r}")
    source, output = Path(source), Path(output)
    run_path = Path(run) if run is not None else None
    fmt_in, fmt_out = input_format(source, run_path), output_format(output)
    if engine == "ray":
        from core.batch.ray_engine import require_ray

        require_ray()  # before reading anything: a missing extra is the first thing to know
    if "parquet" in (fmt_in, fmt_out):
        require("pyarrow", extra="batch", provider="batch (Parquet files)")
    spec_dict = parse_spec(spec if spec is not None else DEFAULT_SPEC)
    create_reranker(spec_dict)  # a bad spec fails here, before any shard folder is made (models load later)
    rows = read_input(source, fmt_in, run_path)
    if not rows:
        raise InvalidInputError(f"{source} holds no rows")
    row_shape = "flat" if fmt_in == "beir" else check_shape(shape, rows)
    text_key = (spec_dict.get("config") or {}).get("text_key")
    plan = plan_rows(rows, row_shape, text_key)
    shards = plan_shards(plan, shard_pairs)
    suffix = ".parquet" if fmt_out == "parquet" else ".jsonl"
    store = ShardStore(
        output.with_name(output.name + ".shards"),
        {
            "input": [file_digest(path) for path in input_files(source, fmt_in, run_path)],
            "input_format": fmt_in,
            "spec": masked(spec_dict),
            "shape": row_shape,
            "rows": len(rows),
            "pairs": plan.pairs,
            "shard_pairs": shard_pairs,
            "shards": len(shards),
            "shard_format": suffix.lstrip("."),
        },
        suffix,
        restart=restart,
    )
    pending = store.pending(len(shards))
    outputs = _Writer(store, rows, plan, shards, row_shape)
    if pending and engine == "local":
        _run_local(spec_dict, outputs, pending, workers, progress)
    elif pending:
        _run_ray(spec_dict, outputs, pending, workers, num_cpus, num_gpus, batch_pairs, progress, stats_dir)
    _assemble(store, len(shards), output, fmt_out, row_shape)
    return BatchSummary(
        output=output,
        engine=engine,
        rows=len(rows),
        pairs=plan.pairs,
        shards=len(shards),
        skipped=len(shards) - len(pending),
        bad_rows=sum(len(u.bad) + (1 if u.error else 0) for u in plan.units),
        failed_queries=outputs.failed,
        wall_s=time.perf_counter() - start,
    )


class _Writer:
    """Composes and writes the output rows of each shard."""

    def __init__(
        self, store: ShardStore, rows: Sequence[Any], plan: Plan, shards: list[list[int]], shape: Shape
    ) -> None:
        self.store, self.rows, self.plan, self.shards, self.shape = store, rows, plan, shards, shape
        self.failed = 0

    def sub_plan(self, shard: int) -> Plan:
        return Plan(self.plan.shape, [self.plan.units[u] for u in self.shards[shard]])

    def pairs(self, shard: int) -> int:
        return self.sub_plan(shard).pairs

    def row_count(self, shard: int) -> int:
        return sum(
            len(u.rows) + len(u.bad) if self.shape == "flat" else 1 for u in self.sub_plan(shard).units
        )

    def write(self, shard: int, out: list[dict[str, Any]]) -> None:
        if self.store.suffix == ".parquet":
            table = arrow_table(out, self.shape)
            pq = require("pyarrow.parquet", extra="batch", provider="batch (Parquet files)")
            self.store.write(shard, lambda path: pq.write_table(table, path))
        else:
            self.store.write(shard, lambda path: write_jsonl(path, out))

    def compose(self, shard: int, outcomes: dict[int, Outcome]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for u in self.shards[shard]:
            unit = self.plan.units[u]
            outcome = outcomes.get(u)
            if outcome is not None and outcome.error is not None:
                self.failed += 1
            out.extend(compose(self.rows, unit, outcome, self.shape))
        return out


def _run_local(
    spec: dict[str, Any], writer: _Writer, pending: list[int], workers: int | None, progress: bool
) -> None:
    reranker: BaseReranker = build_reranker(spec)
    pairs = sum(writer.pairs(k) for k in pending)
    rows = sum(writer.row_count(k) for k in pending)
    with Progress(pairs, rows, enabled=progress) as bar:
        for shard in pending:
            units = [u for u in writer.shards[shard] if writer.plan.units[u].task is not None]
            tasks = [task for u in units if (task := writer.plan.units[u].task) is not None]

            def done(i: int, tasks: list[Task] = tasks) -> None:
                bar.advance(len(tasks[i].texts), 0)

            outcomes = rank_tasks(reranker, tasks, workers=workers or default_workers(reranker), done=done)
            writer.write(shard, writer.compose(shard, dict(zip(units, outcomes, strict=True))))
            bar.advance(0, writer.row_count(shard))


def _run_ray(
    spec: dict[str, Any],
    writer: _Writer,
    pending: list[int],
    workers: int | None,
    num_cpus: float,
    num_gpus: float,
    batch_pairs: int | None,
    progress: bool,
    stats_dir: str | Path | None,
) -> None:
    from core.batch.ray_engine import DEFAULT_BATCH_PAIRS, rank_on_ray, ray_session

    units = [(shard, u) for shard in pending for u in writer.shards[shard] if writer.plan.units[u].task]
    tasks = [writer.plan.units[u].task for _, u in units]
    blocks: dict[int, list[int]] = {}
    for index, (shard, _) in enumerate(units):
        blocks.setdefault(shard, []).append(index)
    waiting = {shard: len(blocks.get(shard, [])) for shard in pending}
    outcomes: dict[int, dict[int, Outcome]] = {shard: {} for shard in pending}
    pairs = sum(writer.pairs(k) for k in pending)
    rows = sum(writer.row_count(k) for k in pending)

    def finish(shard: int, bar: Progress) -> None:
        writer.write(shard, writer.compose(shard, outcomes.pop(shard)))
        bar.advance(0, writer.row_count(shard))

    with Progress(pairs, rows, enabled=progress) as bar, ray_session(spec) as ray:
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts pairs and rows
        for shard in [s for s in pending if waiting[s] == 0]:
            finish(shard, bar)
        results = rank_on_ray(
            spec,
            [t for t in tasks if t is not None],
            [blocks[s] for s in pending if s in blocks],
            workers=workers or 2,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            batch_pairs=batch_pairs or DEFAULT_BATCH_PAIRS,
            stats_dir=stats_dir,
        )
        for index, outcome in results:
            shard, unit = units[index]
            outcomes[shard][unit] = outcome
            bar.advance(len(outcome.order), 0)
            waiting[shard] -= 1
            if waiting[shard] == 0:
                finish(shard, bar)


def _assemble(store: ShardStore, count: int, output: Path, fmt: Format, shape: Shape) -> None:
    """Write the output file from every shard, in order."""
    output.parent.mkdir(parents=True, exist_ok=True)
    paths = store.paths(count)
    temporary = output.with_name(f".{output.name}.tmp")
    if fmt == "parquet":
        pq = require("pyarrow.parquet", extra="batch", provider="batch (Parquet files)")
        write_parquet(temporary, (pq.read_table(p) for p in paths))
    elif fmt == "trec":
        write_trec(temporary, (row for p in paths for row in read_jsonl(p)))
    else:
        with temporary.open("wb") as handle:
            for path in paths:
                with path.open("rb") as shard:
                    shutil.copyfileobj(shard, handle)
    temporary.replace(output)
