"""Fixtures of the provider tests: each hosted provider in turn, a clean environment, a refused URL."""

from __future__ import annotations

import socket

import pytest

from core.providers.hosted.cohere import CohereReranker
from core.providers.hosted.zero_entropy import ZeroEntropyReranker
from tests.support.hosted_support import HOSTED


@pytest.fixture(params=HOSTED)
def provider(request: pytest.FixtureRequest) -> str:
    """Each hosted provider in turn."""
    return str(request.param)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No hosted provider's key or API root in the environment."""
    for cls in (CohereReranker, ZeroEntropyReranker):
        for var in (*cls.key_env_vars, cls.url_env_var):
            if var is not None:
                monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
