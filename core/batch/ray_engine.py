"""The Ray Data engine: a pool of actors, each loading the reranker once, scoring batches of queries.

``rerank_dataset`` maps a ``ray.data.Dataset`` of grouped or flat rows through ``RerankWorker``
actors (``map_batches`` with ``compute=ray.data.ActorPoolStrategy(size=workers)``; flat rows are
first grouped by ``query_id``). Every actor runs the same code as the in-process engine, so the
scores are the same. Keys never travel with the spec (see :mod:`core.batch.secrets`).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from core.base import BaseReranker
from core.batch.formats import output_schema
from core.batch.rows import Outcome, Shape, Task
from core.batch.secrets import ENV_PREFIX, SecretRef, exported, restore_secrets, split_secrets
from core.batch.table import build_reranker, default_workers, rank_tasks, rerank_rows
from core.deps import require
from core.errors import ConfigError, InvalidInputError
from core.specs import DEFAULT_SPEC, Spec, parse_spec

#: How the Ray engine names itself in a missing-dependency error.
RAY = "batch engine 'ray'"
#: Pairs per actor batch by default: a few seconds of work on a CPU, so Ray's per-batch cost is small.
DEFAULT_BATCH_PAIRS = 512

Mode = Literal["rows", "tasks"]

#: Private key variables exported into the environment of a local Ray this process started.
_started_with: set[str] = set()


def require_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or MissingDependencyError naming the ``ray`` extra."""
    ray = require("ray", extra="ray", provider=RAY)
    require("ray.data", extra="ray", provider=RAY)
    return ray


@contextmanager
def ray_session(spec: Spec | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray for a batch run: the running one, else the cluster at ``RAY_ADDRESS``, else a new local one.

    A local Ray started here has no dashboard and no usage reporting, inherits this process's
    environment (so the workers see the provider's key variables) plus the keys written in
    ``spec`` under private variables, and is shut down when the block ends.
    """
    ray = require_ray()
    secrets = split_secrets(parse_spec(spec))[1] if spec is not None else {}
    if ray.is_initialized():
        yield ray
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
        try:
            yield ray
        finally:
            ray.shutdown()
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with exported(secrets):  # the raylet, hence every worker, inherits them; no runtime_env, no logs
        ray.init(num_cpus=num_cpus, include_dashboard=False)
    _started_with.update(secrets)
    try:
        yield ray
    finally:
        ray.shutdown()
        _started_with.difference_update(secrets)


def shippable_spec(spec: Spec | None) -> tuple[dict[str, Any], list[SecretRef]]:
    """The spec to send to actors (keys masked) and where its keys come back from.

    A key written in the spec reaches actors only through a local Ray started by
    :func:`ray_session` with that spec; otherwise put it in the provider's variable on the nodes.
    """
    shipped, secrets, refs = split_secrets(parse_spec(spec if spec is not None else DEFAULT_SPEC))
    missing = sorted(set(secrets) - _started_with)
    if missing:
        raise ConfigError(
            "the spec holds an API key, which Ray would log in clear if it were sent to its workers "
            "(runtime_env) and pickle with the actors: leave api_key out of the spec and set the "
            "provider's key variable (e.g. CO_API_KEY) in the environment of the Ray nodes, or start "
            "a local Ray with core.batch.ray_session(spec)"
        )
    return shipped, refs


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class RerankWorker:
    """A Ray Data actor: builds the reranker once, then reranks each batch it is given.

    ``mode="rows"`` takes and returns rows of ``shape``; ``mode="tasks"`` takes ``key``, ``query``,
    ``texts`` and returns each task's outcome (the in-process engine's output rows are composed
    from them by the driver). With ``stats_dir``, the actor keeps ``actor-<host>-<pid>.json`` there
    up to date: loads, load seconds, batches, pairs, busy seconds, peak memory, and the wall-clock
    times of its start, first batch and last batch end.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        refs: Sequence[SecretRef] = (),
        mode: Mode = "rows",
        shape: Shape | None = None,
        workers: int | None = None,
        stats_dir: str | None = None,
    ) -> None:
        started_at, start = time.time(), time.perf_counter()
        self.reranker: BaseReranker = build_reranker(restore_secrets(spec, list(refs)))
        self.mode = mode
        self.shape = shape
        self.workers = workers or default_workers(self.reranker)
        self.stats_path = None
        if stats_dir is not None:
            Path(stats_dir).mkdir(parents=True, exist_ok=True)
            self.stats_path = Path(stats_dir) / f"actor-{socket.gethostname()}-{os.getpid()}.json"
        self.stats: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "loads": 1,
            "started_at": started_at,
            "load_s": time.perf_counter() - start,
            "first_batch_at": None,
            "last_batch_end_at": None,
            "batches": 0,
            "rows": 0,
            "pairs": 0,
            "busy_s": 0.0,
            "peak_rss_mb": peak_rss_mb(),
        }
        self._save_stats()

    def __call__(self, batch: Any) -> Any:
        """Rerank one ``pyarrow.Table`` batch."""
        if self.stats["first_batch_at"] is None:
            self.stats["first_batch_at"] = time.time()
        start = time.perf_counter()
        if self.mode == "tasks":
            out, pairs = self._tasks(batch)
        else:
            out, pairs = self._rows(batch)
        self.stats["batches"] += 1
        self.stats["rows"] += batch.num_rows
        self.stats["pairs"] += pairs
        self.stats["busy_s"] += time.perf_counter() - start
        self.stats["last_batch_end_at"] = time.time()
        self.stats["peak_rss_mb"] = peak_rss_mb()
        self._save_stats()
        return out

    def _rows(self, batch: Any) -> tuple[Any, int]:
        pa = require("pyarrow", extra="ray", provider=RAY)
        rows = batch.to_pylist()
        out = rerank_rows(self.reranker, rows, self.shape, workers=self.workers)
        table = pa.Table.from_pylist(out, schema=output_schema(batch.schema, _shape_of(self.shape, rows)))
        return table, sum(1 for r in out for _ in _listed(r))

    def _tasks(self, batch: Any) -> tuple[Any, int]:
        pa = require("pyarrow", extra="ray", provider=RAY)
        columns = batch.to_pydict()
        tasks = [Task(q, list(t)) for q, t in zip(columns["query"], columns["texts"], strict=True)]
        outcomes = rank_tasks(self.reranker, tasks, workers=self.workers)
        table = pa.table(
            {
                "key": pa.array(columns["key"], pa.int64()),
                "order": pa.array([o.order for o in outcomes], pa.list_(pa.int64())),
                "scores": pa.array([o.scores for o in outcomes], pa.list_(pa.float64())),
                "raw_scores": pa.array([o.raw_scores for o in outcomes], pa.list_(pa.float64())),
                "errors": pa.array([o.errors for o in outcomes], pa.list_(pa.string())),
                "error": pa.array([o.error for o in outcomes], pa.string()),
            }
        )
        return table, sum(len(t.texts) for t in tasks)

    def _save_stats(self) -> None:
        if self.stats_path is not None:
            temporary = self.stats_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.stats))
            os.replace(temporary, self.stats_path)


def _shape_of(shape: Shape | None, rows: Sequence[Any]) -> Shape:
    from core.batch.rows import detect_shape

    return shape if shape is not None else detect_shape(rows)


def _listed(row: Mapping[str, Any]) -> list[Any]:
    documents = row.get("documents")
    return list(documents) if isinstance(documents, list) else [row]


def outcome_from_row(row: Mapping[str, Any]) -> Outcome:
    """An :class:`Outcome` from a ``tasks``-mode result row."""
    return Outcome(
        list(row["order"]), list(row["scores"]), list(row["raw_scores"]), list(row["errors"]), row["error"]
    )


def _strategy(ray: ModuleType, workers: int) -> Any:
    if workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}")
    return ray.data.ActorPoolStrategy(size=workers)


def rerank_dataset(
    ds: Any,
    spec: Spec | None = None,
    *,
    shape: Shape | None = None,
    workers: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    batch_pairs: int = DEFAULT_BATCH_PAIRS,
    docs_per_row: float | None = None,
    concurrency: int | None = None,
    stats_dir: str | Path | None = None,
) -> Any:
    """Rerank a ``ray.data.Dataset`` of grouped or flat rows on a pool of ``workers`` actors.

    Each actor reserves ``num_cpus`` / ``num_gpus``, builds the reranker from ``spec`` once (any
    spec: local model, hosted API, LLM, cascade, fallbacks) and reranks batches of about
    ``batch_pairs`` pairs (grouped rows: ``batch_pairs / docs_per_row`` rows, the average number
    of documents estimated from the first rows when not given). Flat rows are grouped by
    ``query_id`` first (a shuffle), one query per call. Output rows are those of
    :func:`core.batch.rerank_table`; ``concurrency``: queries each actor scores at once (default:
    ``max_concurrency`` for API providers, else 1). Lazy, like every Ray Data transform.
    """
    ray = require_ray()
    shipped, refs = shippable_spec(spec)
    if shape is None:
        shape = _shape_of(None, ds.take(1))
    if batch_pairs < 1:
        raise InvalidInputError(f"batch_pairs must be >= 1, got {batch_pairs}")
    kwargs: dict[str, Any] = {
        "fn_constructor_kwargs": {
            "spec": shipped,
            "refs": refs,
            "mode": "rows",
            "shape": shape,
            "workers": concurrency,
            "stats_dir": None if stats_dir is None else str(stats_dir),
        },
        "compute": _strategy(ray, workers),
        "num_cpus": num_cpus,
        "num_gpus": num_gpus or None,
        "batch_format": "pyarrow",
    }
    if shape == "flat":
        return ds.groupby("query_id").map_groups(RerankWorker, **kwargs)
    if docs_per_row is None:
        sample = ds.take(32)
        docs_per_row = max(1.0, sum(len(_listed(r)) for r in sample) / max(1, len(sample)))
    return ds.map_batches(RerankWorker, batch_size=max(1, round(batch_pairs / docs_per_row)), **kwargs)


def rank_on_ray(
    spec: Spec | None,
    tasks: Sequence[Task],
    blocks: Sequence[Sequence[int]],
    *,
    workers: int = 2,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    batch_pairs: int = DEFAULT_BATCH_PAIRS,
    concurrency: int | None = None,
    stats_dir: str | Path | None = None,
) -> Iterator[tuple[int, Outcome]]:
    """Rank ``tasks`` on Ray actors, yielding ``(task index, outcome)`` as results stream back.

    ``blocks`` lists task indices per input block (the batch command gives one block per shard).
    """
    ray = require_ray()
    pa = require("pyarrow", extra="ray", provider=RAY)
    shipped, refs = shippable_spec(spec)
    if not tasks:
        return
    tables = [
        pa.table(
            {
                "key": pa.array(list(block), pa.int64()),
                "query": pa.array([tasks[i].query for i in block], pa.string()),
                "texts": pa.array([tasks[i].texts for i in block], pa.list_(pa.string())),
            }
        )
        for block in blocks
        if block
    ]
    pairs = sum(len(t.texts) for t in tasks)
    out = ray.data.from_arrow(tables).map_batches(
        RerankWorker,
        fn_constructor_kwargs={
            "spec": shipped,
            "refs": refs,
            "mode": "tasks",
            "workers": concurrency,
            "stats_dir": None if stats_dir is None else str(stats_dir),
        },
        batch_size=max(1, round(batch_pairs * len(tasks) / max(pairs, 1))),
        compute=_strategy(ray, workers),
        num_cpus=num_cpus,
        num_gpus=num_gpus or None,
        batch_format="pyarrow",
    )
    for batch in out.iter_batches(batch_format="pyarrow", batch_size=None):
        for row in batch.to_pylist():
            yield int(row["key"]), outcome_from_row(row)


__all__ = ["ENV_PREFIX", "RerankWorker", "rank_on_ray", "ray_session", "require_ray", "rerank_dataset"]
