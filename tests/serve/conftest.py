"""Servers for the serve tests: the tiny cross-encoder behind a real uvicorn, one per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import create_reranker
from core.base import BaseReranker
from tests.support.serve_support import KEY, RunningServer

#: The name the tiny model is served under.
MODEL = "tiny"


@pytest.fixture(scope="module")
def tiny_reranker(tiny_cross_encoder: Path) -> BaseReranker:
    """The tiny cross-encoder in float32, as served (the server and the test share its runtime)."""
    spec = {"provider": "huggingface", "config": {"model": str(tiny_cross_encoder), "dtype": "float32"}}
    return create_reranker(spec)


@pytest.fixture(scope="module")
def tiny_server(tiny_reranker: BaseReranker) -> Iterator[RunningServer]:
    """The tiny model served with a key and small limits (50 documents, 64 KiB bodies)."""
    server = RunningServer(
        tiny_reranker, served_model_name=MODEL, api_key=KEY, max_documents=50, max_body_bytes=64 * 1024
    )
    server.wait_ready()
    yield server
    server.stop()
