"""Fixtures of the batch tests: flat and grouped rows for the tiny model, one local Ray per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.model_factory import QUERY, TEXTS
from tests.support.network_guard import loopback_only

#: The Cohere key the Ray workers inherit at start-up; the test process itself never holds it.
RAY_WORKER_KEY = "ray-worker-secret-7f3a"

OTHER_QUERY = "python code program"


def tiny_spec(model: Path, **config: Any) -> dict[str, Any]:
    """The tiny cross-encoder in float32 (the precision the engines are compared in)."""
    return {"provider": "huggingface", "config": {"model": str(model), "dtype": "float32", **config}}


def flat_rows() -> list[dict[str, Any]]:
    """Two queries of 7 pairs, first-stage scores and a bad row (an integer text) inside the first."""
    rows = []
    for q, query in (("q1", QUERY), ("q2", OTHER_QUERY)):
        for i, text in enumerate(TEXTS):
            rows.append(
                {"query_id": q, "doc_id": f"{q}-d{i}", "query": query, "text": text, "score": 10.0 - i}
            )
    rows.insert(3, {"query_id": "q1", "doc_id": "q1-bad", "query": QUERY, "text": 42, "score": 0.5})
    return rows


def grouped_rows() -> list[dict[str, Any]]:
    """Two good queries with ids, and a row with no documents."""
    return [
        {
            "query_id": "q1",
            "query": QUERY,
            "documents": TEXTS,
            "doc_ids": [f"d{i}" for i in range(7)],
            "tag": 1,
        },
        {"query_id": "q2", "query": OTHER_QUERY, "documents": list(reversed(TEXTS)), "tag": 2},
        {"query_id": "q3", "query": QUERY, "documents": [], "tag": 3},
    ]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[dict[str, Any]]:
    """A local Ray (2 CPUs, no dashboard, no usage stats) for the whole session, shut down at its end.

    Started under the loopback guard with the Cohere key in its environment: the workers inherit
    it, the test process drops it right after. Yields the module and the session's log folder.
    """
    ray = pytest.importorskip("ray", reason="the ray extra is part of the dev install")
    temp = tempfile.mkdtemp(prefix="rl-ray-", dir="/tmp")  # Ray's socket paths must stay short
    saved = {
        k: os.environ.get(k)
        for k in ("RAY_USAGE_STATS_ENABLED", "CO_API_KEY", "HF_HUB_DISABLE_PROGRESS_BARS")
    }
    os.environ.update(
        RAY_USAGE_STATS_ENABLED="0", CO_API_KEY=RAY_WORKER_KEY, HF_HUB_DISABLE_PROGRESS_BARS="1"
    )
    try:
        with loopback_only() as attempts:
            ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert not attempts, f"starting Ray tried to reach the network: {attempts}"
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield {"ray": ray, "logs": Path(temp)}
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
