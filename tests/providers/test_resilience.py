"""Retries, deadlines, bad responses, fallbacks and concurrency, shared by the hosted providers.

Every scripted fault ends in either the right ranking or the documented fallback holding every document.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from core.errors import ProviderError
from core.providers.hosted.responses import (
    error_message,
    retry_after_seconds,
    scores_from_results,
    usage_counts,
)
from core.registry import create_reranker
from core.results import RerankedDocuments
from tests.support.fake_api import DOCS, QUERY, FakeApiServer, Fault, expected_order
from tests.support.hosted_support import FAST, PATIENT, WIRE, hosted, record_retry_waits


def ranked(out: RerankedDocuments) -> list[str]:
    return [d["text"] for d in out]


def assert_right_ranking(out: RerankedDocuments) -> None:
    assert out.error is None
    assert ranked(out) == [DOCS[i] for i in expected_order()]


def assert_fallback_keeps_everything(out: RerankedDocuments, provider: str) -> None:
    """The documented fallback: every document, first-stage order, no score, the error on each."""
    assert ranked(out) == DOCS
    assert out.ranking.provider == "first_stage" and out.ranking.attempts == [provider, "first_stage"]
    assert out.error is not None and f"[{provider}" in out.error
    assert all(d["rerank_score"] is None and d["rerank_error"] == out.error for d in out)


# --- retries --------------------------------------------------------------------------------
def test_429_with_retry_after_then_success(server: FakeApiServer, provider: str) -> None:
    server.script(
        WIRE[provider],
        Fault(status=429, headers={"retry-after-ms": "1"}),
        Fault(status=429, headers={"Retry-After": "0"}),
    )
    assert_right_ranking(hosted(provider, server).rerank(QUERY, DOCS))
    assert len(server.requests_for(WIRE[provider])) == 3


def test_retry_after_is_honoured_up_to_the_cap(
    server: FakeApiServer, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = record_retry_waits(monkeypatch)
    reranker = hosted(provider, server, max_retry_wait=0.3)
    server.script(WIRE[provider], Fault(status=429, headers={"retry-after-ms": "250"}))
    start = time.monotonic()
    assert_right_ranking(reranker.rerank(QUERY, DOCS))
    assert time.monotonic() - start >= 0.25  # waited as asked (a loaded machine only waits longer)
    assert len(waits) == 1 and 0.25 <= waits[0] <= 0.3  # at least the 250 ms asked, at most the cap
    server.script(WIRE[provider], Fault(status=503, headers={"Retry-After": "30"}))
    assert_right_ranking(reranker.rerank(QUERY, DOCS))
    assert waits[1:] == [0.3]  # 30 s asked, capped at max_retry_wait=0.3
    assert len(server.requests_for(WIRE[provider])) == 4


def test_5xx_and_409_burst_then_success(server: FakeApiServer, provider: str) -> None:
    server.script(WIRE[provider], Fault(status=500), Fault(status=503), Fault(status=409), Fault(status=502))
    assert_right_ranking(hosted(provider, server, max_retries=4).rerank(QUERY, DOCS))
    assert len(server.requests_for(WIRE[provider])) == 5


async def test_5xx_burst_then_success_async(server: FakeApiServer, provider: str) -> None:
    server.script(WIRE[provider], Fault(status=503), Fault.rate_limited(), Fault(status=408))
    assert_right_ranking(await hosted(provider, server, max_retries=3).arerank(QUERY, DOCS))
    assert len(server.requests_for(WIRE[provider])) == 4


def test_retries_exhausted_fall_back_with_every_document(server: FakeApiServer, provider: str) -> None:
    server.script(WIRE[provider], *[Fault(status=503)] * 4)
    out = hosted(provider, server, max_retries=2).rerank(QUERY, DOCS)
    assert_fallback_keeps_everything(out, provider)
    assert "HTTP 503" in str(out.error) and "scripted fault" in str(out.error)
    assert len(server.requests_for(WIRE[provider])) == 3


def test_raise_policy_gives_a_typed_error(server: FakeApiServer, provider: str) -> None:
    server.script(WIRE[provider], *[Fault(status=500)] * 2)
    with pytest.raises(ProviderError) as info:
        hosted(provider, server, max_retries=1, on_error="raise").rerank(QUERY, DOCS)
    assert (info.value.provider, info.value.status, info.value.message) == (provider, 500, "scripted fault")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(server: FakeApiServer, provider: str, status: int) -> None:
    server.script(WIRE[provider], Fault(status=status))
    out = hosted(provider, server).rerank(QUERY, DOCS)
    assert_fallback_keeps_everything(out, provider)
    assert f"HTTP {status}" in str(out.error)
    assert len(server.requests_for(WIRE[provider])) == 1


def test_connection_dropped_then_success(server: FakeApiServer, provider: str) -> None:
    server.script(WIRE[provider], Fault(close=True))
    assert_right_ranking(hosted(provider, server).rerank(QUERY, DOCS))
    assert len(server.requests_for(WIRE[provider])) == 2


@pytest.mark.parametrize("use_async", [False, True])
def test_refused_connection_is_retried_then_falls_back(
    provider: str, use_async: bool, refused_url: str
) -> None:
    reranker = hosted(provider, refused_url, max_retries=2)
    calls: list[int] = []
    send = reranker._arequest if use_async else reranker._request

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return send(*args, **kwargs)

    setattr(reranker, "_arequest" if use_async else "_request", counting)
    out = asyncio.run(reranker.arerank(QUERY, DOCS)) if use_async else reranker.rerank(QUERY, DOCS)
    assert_fallback_keeps_everything(out, provider)
    assert "connection failed" in str(out.error)
    assert len(calls) == 3


# --- deadline and per-attempt timeout ----------------------------------------------------------
@pytest.mark.parametrize("use_async", [False, True])
def test_hang_past_the_deadline_falls_back_in_time(
    server: FakeApiServer, provider: str, use_async: bool
) -> None:
    server.script(WIRE[provider], *[Fault(delay=30.0)] * 10)
    reranker = hosted(provider, server, timeout=0.25, deadline=1.2, max_retries=10)
    start = time.monotonic()
    out = asyncio.run(reranker.arerank(QUERY, DOCS)) if use_async else reranker.rerank(QUERY, DOCS)
    elapsed = time.monotonic() - start
    assert_fallback_keeps_everything(out, provider)
    assert "timed out" in str(out.error)
    assert elapsed >= 0.25  # at least one attempt ran out its timeout
    assert elapsed < 1.2 + 3  # the deadline bounds attempts and retries together: no 30 s answer awaited
    # Retried within the deadline, then stopped: each attempt lasts its 0.25 s, so at most 1.2 / 0.25 of
    # them fit (11 without the deadline); the 0.9 s left after the first leave room for a second.
    assert 2 <= len(server.requests_for(WIRE[provider])) <= 5


def test_deadline_stops_retrying_a_slow_retry_after(
    server: FakeApiServer, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait that would end past the deadline is not started: the last error comes back at once."""
    waits = record_retry_waits(monkeypatch)
    server.script(WIRE[provider], Fault(status=429, headers={"Retry-After": "5"}))
    reranker = hosted(provider, server, deadline=3.0, max_retry_wait=10)
    start = time.monotonic()
    out = reranker.rerank(QUERY, DOCS)
    assert waits == []  # the 5 s wait was never started
    assert time.monotonic() - start < 3.0  # nor was the deadline sat out some other way
    assert_fallback_keeps_everything(out, provider)
    assert "HTTP 429" in str(out.error)
    assert len(server.requests_for(WIRE[provider])) == 1


# --- bad responses ------------------------------------------------------------------------------
def _results(edit: Callable[[list[dict[str, Any]]], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda resp: {**resp, "results": edit(resp["results"])}


def _drop_score(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"index": r["index"]} for r in results]


BAD_RESPONSES: dict[str, Fault] = {
    "malformed json": Fault(raw=b'{"results": [{"index": 0,'),
    "empty body": Fault(raw=b""),
    "none scores": Fault(mutate=_results(lambda rs: [{**r, "relevance_score": None} for r in rs])),
    "missing scores": Fault(mutate=_results(_drop_score)),
    "string score": Fault(mutate=_results(lambda rs: [{**r, "relevance_score": "high"} for r in rs])),
    "duplicate index": Fault(mutate=_results(lambda rs: [{**r, "index": 0} for r in rs])),
    "out of range index": Fault(mutate=_results(lambda rs: [{**r, "index": r["index"] + 1} for r in rs])),
    "negative index": Fault(mutate=_results(lambda rs: [{**r, "index": r["index"] - 4} for r in rs])),
    "fewer results": Fault(mutate=_results(lambda rs: rs[:2])),
    "more results": Fault(mutate=_results(lambda rs: [*rs, rs[0]])),
    "no results key": Fault(body={"id": "x"}),
    "results not a list": Fault(mutate=_results(lambda rs: {"0": 1.0})),
}


@pytest.mark.parametrize("fault", list(BAD_RESPONSES.values()), ids=list(BAD_RESPONSES))
def test_bad_responses_fall_back_with_every_document(
    server: FakeApiServer, provider: str, fault: Fault
) -> None:
    server.script(WIRE[provider], fault)
    out = hosted(provider, server).rerank(QUERY, DOCS)
    assert_fallback_keeps_everything(out, provider)
    assert len(server.requests_for(WIRE[provider])) == 1  # a bad answer is not retried


async def test_bad_response_async_then_next_call_is_fine(server: FakeApiServer, provider: str) -> None:
    server.script(WIRE[provider], BAD_RESPONSES["duplicate index"])
    reranker = hosted(provider, server)
    assert_fallback_keeps_everything(await reranker.arerank(QUERY, DOCS), provider)
    assert_right_ranking(await reranker.arerank(QUERY, DOCS))


def test_non_finite_scores_are_rejected() -> None:
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(ProviderError, match="score"):
            scores_from_results([{"index": 0, "relevance_score": bad}], 1, provider="p")
    ok = scores_from_results(
        [{"index": 1, "relevance_score": 0.2}, {"index": 0, "relevance_score": 1}], 2, provider="p"
    )
    assert list(ok) == [1.0, 0.2] and not ok.unscored


# --- fallback chain and toggles --------------------------------------------------------------------
def test_fallback_chain_primary_then_fallback(
    server: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    spec = {
        "provider": "cohere",
        "config": {"api_key": "k", "base_url": server.url, **FAST, "max_retries": 1},
        "fallbacks": [
            {"provider": "zero_entropy", "config": {"api_key": "k", "base_url": server.url, **FAST}}
        ],
    }
    server.script("cohere", Fault(status=503), Fault(status=503))
    with caplog.at_level(logging.WARNING, logger="rerank_layer"):
        out = create_reranker(spec).rerank(QUERY, DOCS)
    assert_right_ranking(out)
    assert out.ranking.attempts == ["cohere", "zero_entropy"] and out.ranking.provider == "zero_entropy"
    assert out.usage["total_tokens"] > 0 and "search_units" not in out.usage
    assert any("cohere" in r.getMessage() and "503" in r.getMessage() for r in caplog.records)
    assert len(server.requests_for("cohere")) == 2 and len(server.requests_for("zeroentropy")) == 1


async def test_fallback_chain_all_fail_keeps_first_stage(server: FakeApiServer) -> None:
    primary = hosted("zero_entropy", server, max_retries=0)
    primary.fallbacks = [hosted("cohere", server, max_retries=0)]
    server.script("zeroentropy", Fault(status=500))
    server.script("cohere", BAD_RESPONSES["fewer results"])
    out = await primary.arerank(QUERY, DOCS, top_k=3)
    assert ranked(out) == DOCS[:3]
    assert out.ranking.attempts == ["zero_entropy", "cohere", "first_stage"]
    assert out.error is not None and "[cohere]" in out.error


def test_rerank_false_skips_the_api(server: FakeApiServer, provider: str) -> None:
    reranker = hosted(provider, server)
    out = reranker.rerank(QUERY, DOCS, top_k=3, rerank=False)
    assert ranked(out) == DOCS[:3] and not server.requests


# --- concurrency ------------------------------------------------------------------------------
# The fake server holds requests until the expected number are in flight at once (10 s at most), then
# reports the most it saw: overlap is proven by the server, not by a clock.
async def test_arerank_many_runs_queries_concurrently(server: FakeApiServer, provider: str) -> None:
    reranker = hosted(provider, server, max_concurrency=10, **PATIENT)
    queries = [f"{QUERY} {i}" for i in range(10)]
    server.hold_until(10)
    outs = await reranker.arerank_many([(q, DOCS) for q in queries])
    assert server.most_in_flight == 10, "all ten queries in flight at once, and no more"
    assert all(
        ranked(out) == [DOCS[i] for i in expected_order(query=q)]
        for q, out in zip(queries, outs, strict=True)
    )
    assert sorted(r.body["query"] for r in server.requests_for(WIRE[provider])) == sorted(queries)


def test_rerank_many_sync_runs_queries_concurrently(server: FakeApiServer, provider: str) -> None:
    reranker = hosted(provider, server, max_concurrency=10, **PATIENT)
    server.hold_until(10)
    outs = reranker.rerank_many([(QUERY, DOCS)] * 10)
    assert server.most_in_flight == 10
    assert all(ranked(out) == [DOCS[i] for i in expected_order()] for out in outs)
    assert len(server.requests_for(WIRE[provider])) == 10


async def test_concurrency_is_bounded(server: FakeApiServer, provider: str) -> None:
    server.latency[WIRE[provider]] = 0.2
    reranker = hosted(provider, server, max_concurrency=2, **PATIENT)
    server.hold_until(2)
    start = time.monotonic()
    await reranker.arerank_many([(QUERY, DOCS)] * 4)
    assert time.monotonic() - start >= 2 * 0.2  # two at a time: at least two rounds of 0.2 s
    assert server.most_in_flight == 2 and len(server.requests_for(WIRE[provider])) == 4


def _fifty() -> list[str]:
    return [f"doc {i} " + ("cat mat" if i % 7 == 0 else "cat" if i % 3 == 0 else "dog") for i in range(50)]


@pytest.mark.parametrize("use_async", [False, True])
def test_chunked_requests_run_concurrently_and_merge_in_order(
    server: FakeApiServer, provider: str, use_async: bool
) -> None:
    docs = _fifty()
    reranker = hosted(provider, server, documents_per_request=10, max_concurrency=10, **PATIENT)
    server.hold_until(5)
    out = asyncio.run(reranker.arerank(QUERY, docs)) if use_async else reranker.rerank(QUERY, docs)
    assert server.most_in_flight == 5, "the five chunks in flight at once"
    assert ranked(out) == [docs[i] for i in expected_order(docs)]
    requests = server.requests_for(WIRE[provider])
    assert sorted(len(r.body["documents"]) for r in requests) == [10] * 5
    assert sorted(d for r in requests for d in r.body["documents"]) == sorted(docs)
    assert all("top_n" not in r.body for r in requests)
    if provider == "cohere":
        assert out.usage == {"search_units": 5.0}


@pytest.mark.parametrize("use_async", [False, True])
def test_one_failed_chunk_falls_back_with_all_documents(
    server: FakeApiServer, provider: str, use_async: bool
) -> None:
    docs = _fifty()
    server.script(WIRE[provider], Fault(status=400))
    reranker = hosted(provider, server, documents_per_request=10, max_concurrency=1)
    out = asyncio.run(reranker.arerank(QUERY, docs)) if use_async else reranker.rerank(QUERY, docs)
    assert ranked(out) == docs and out.ranking.provider == "first_stage"
    assert len(server.requests_for(WIRE[provider])) <= 2  # chunks still queued were never sent


# --- helpers --------------------------------------------------------------------------------------
def test_retry_after_parsing() -> None:
    assert retry_after_seconds({"Retry-After-Ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "20", "retry-after": "9"}) == 0.02
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_seconds({"Retry-After": later}) or 0) <= 30
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({"Retry-After": "-4"}) == 0.0
    assert retry_after_seconds(None) is None


def test_usage_counts_are_ints_unless_fractional() -> None:
    usage = usage_counts(units=2.0, tokens=7, share=0.5, flag=True, word="3", missing=None, bad=float("nan"))
    assert usage == {"units": 2, "tokens": 7, "share": 0.5}
    assert (type(usage["units"]), type(usage["tokens"]), type(usage["share"])) == (int, int, float)


def test_error_message_finds_the_providers_words() -> None:
    assert error_message({"message": "bad key"}) == "bad key"
    assert error_message({"error": {"message": "rate limited", "type": "x"}}) == "rate limited"
    assert error_message({"detail": "nope"}) == "nope"
    assert error_message(None, default="HTTP error") == "HTTP error"
    assert len(error_message("x" * 1000)) == 300


# --- the no-network guard -----------------------------------------------------------------------
def test_the_guard_blocks_non_loopback_connections(offline: list[str], provider: str) -> None:
    with pytest.raises(RuntimeError, match="blocked"):
        socket.create_connection(("203.0.113.7", 443), timeout=0.5)
    with socket.socket() as sock, pytest.raises(RuntimeError, match="blocked"):
        sock.connect(("203.0.113.7", 443))
    reranker = hosted(provider, "https://api.example.invalid", on_error="raise", max_retries=0)
    with pytest.raises(ProviderError, match="blocked"):
        reranker.rerank(QUERY, DOCS)
    assert offline and all("blocked" in attempt for attempt in offline)  # recorded, though swallowed
    assert any("api.example.invalid" in attempt for attempt in offline)
    offline.clear()  # without this, the fixture fails the test at teardown
