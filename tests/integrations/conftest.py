"""Fixtures of the adapter tests: the test plugins registered, the fake server judging the corpus."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core import registry
from tests.support.adapter_support import CORPUS, PLUGINS, QUERY
from tests.support.fake_api import FakeApiServer, word_overlap


@pytest.fixture(scope="session", autouse=True)
def plugins() -> Iterator[None]:
    """The test plugins, registered as third-party providers while the adapter tests run."""
    for name, cls in PLUGINS.items():
        registry.register_provider(name, cls)
    yield
    for name in PLUGINS:
        registry._registered.pop(name, None)


def corpus_judge(body: dict[str, Any]) -> str:
    """Fake chat answer: the word overlap of QUERY with the one corpus text the prompt holds.

    Reads no prompt format, only which corpus text appears in the messages.
    """
    prompt = " ".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
    found = [text for _, text, _ in CORPUS if text in prompt]
    return f"{word_overlap(QUERY, found[0]):.4f}" if len(found) == 1 else "0"


@pytest.fixture
def server(server: FakeApiServer) -> FakeApiServer:
    """The reset fake server, with the corpus judge answering chat calls."""
    server.chat_handler = corpus_judge
    return server
