"""Group 8 (rerank_many) and concurrency: one failing query stops the others, and ``max_concurrency``
caps the requests in flight for the whole call tree (every query, every chunk or document)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import ProviderError
from core.registry import create_reranker
from tests.support.fake_api import DOCS, FakeApiServer, word_overlap
from tests.support.hosted_support import PATIENT, hosted

QUERIES = ["cat", "mat", "dog", "bark"]

#: Each request answered this long after the fake server's hold (``hold_until(limit)``) lets it go:
#: a request past the limit would be seen in flight with them.
HOLD = 0.1


@pytest.fixture
def release(server: FakeApiServer) -> Iterator[threading.Event]:
    """Cohere answers 400 to the query "bad" at once; other queries wait for this event (10 s at most)."""
    event = threading.Event()

    def score(query: str, doc: str) -> float:
        if query == "bad":
            raise ValueError("scripted bad request")
        event.wait(10)
        return word_overlap(query, doc)

    server.score_fn = score
    yield event
    event.set()


def test_rerank_many_starts_no_query_after_one_raised(
    server: FakeApiServer, release: threading.Event
) -> None:
    reranker = hosted("cohere", server, on_error="raise", max_retries=0, max_concurrency=1)
    release.set()
    with pytest.raises(ProviderError, match="HTTP 400"):
        reranker.rerank_many([("bad", DOCS), ("cat", DOCS), ("mat", DOCS), ("dog", DOCS)])
    assert [r.body["query"] for r in server.requests_for("cohere")] == ["bad"]


async def test_arerank_many_cancels_the_other_queries_when_one_raises(
    server: FakeApiServer, release: threading.Event
) -> None:
    reranker = hosted("cohere", server, on_error="raise", max_retries=0)
    with pytest.raises(ProviderError, match="HTTP 400"):
        await reranker.arerank_many([("bad", DOCS), ("cat", DOCS), ("mat", DOCS)])
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert others == [], "the queries still waiting for their answers were cancelled"


def _llm(server: FakeApiServer, limit: int) -> Any:
    config = {"api_key": "k", "base_url": server.url + "/v1", "max_concurrency": limit, "cache_size": 0}
    reranker = create_reranker({"provider": "llm_reranker", "config": {**config, **PATIENT}})
    reranker.warmup()
    server.latency["openai"] = HOLD
    server.hold_until(limit)
    return reranker


def test_llm_max_concurrency_caps_chat_calls_across_queries(server: FakeApiServer) -> None:
    reranker = _llm(server, limit=3)
    out = reranker.rerank_many([(q, DOCS) for q in QUERIES])
    assert [len(o) for o in out] == [len(DOCS)] * len(QUERIES) and not any(o.error for o in out)
    assert len(server.requests_for("openai")) == len(QUERIES) * len(DOCS)
    assert server.most_in_flight == 3  # the limit reached, never passed


async def test_llm_max_concurrency_caps_chat_calls_across_async_queries(server: FakeApiServer) -> None:
    reranker = _llm(server, limit=3)
    out = await reranker.arerank_many([(q, DOCS) for q in QUERIES])
    assert not any(o.error for o in out) and len(server.requests_for("openai")) == len(QUERIES) * len(DOCS)
    assert server.most_in_flight == 3


@pytest.mark.parametrize("asynchronous", [False, True])
def test_hosted_max_concurrency_caps_chunk_requests_across_queries(
    server: FakeApiServer, asynchronous: bool
) -> None:
    reranker = hosted("cohere", server, documents_per_request=1, max_concurrency=2, **PATIENT)
    server.latency["cohere"] = HOLD
    server.hold_until(2)
    requests = [(q, DOCS) for q in QUERIES[:3]]
    out = asyncio.run(reranker.arerank_many(requests)) if asynchronous else reranker.rerank_many(requests)
    assert not any(o.error for o in out) and len(server.requests_for("cohere")) == 3 * len(DOCS)
    assert server.most_in_flight == 2
