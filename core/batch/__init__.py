"""Batch reranking: tables in this process, Ray Data datasets on a cluster, the ``batch`` command.

``rerank_table`` needs no extra; ``rerank_dataset`` and the ``ray`` engine need ``rerank-layer[ray]``
(imported only when used); Parquet files need ``rerank-layer[batch]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.batch.job import BatchSummary, run_batch
from core.batch.rows import OUTPUT_KEYS, RANK_KEY, Shape, detect_shape
from core.batch.table import rerank_table

if TYPE_CHECKING:
    from core.batch.ray_engine import ray_session, rerank_dataset

__all__ = [
    "OUTPUT_KEYS",
    "RANK_KEY",
    "BatchSummary",
    "Shape",
    "detect_shape",
    "ray_session",
    "rerank_dataset",
    "rerank_table",
    "run_batch",
]


def __getattr__(name: str) -> Any:
    """``rerank_dataset`` and ``ray_session`` load the Ray engine on first use."""
    if name in ("rerank_dataset", "ray_session"):
        from core.batch import ray_engine

        return getattr(ray_engine, name)
    raise AttributeError(f"module 'core.batch' has no attribute {name!r}")
