"""Batching across requests: concurrent requests share model calls, each keeps the scores it gets alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.base import BaseReranker
from core.providers.huggingface import HuggingFaceReranker
from tests.support.model_factory import QUERY, TEXTS, WORDS
from tests.support.serve_support import RunningServer, wait_until

REQUESTS = [
    (QUERY, TEXTS),
    ("python code language", TEXTS[2:]),
    ("river weather rain sun", [" ".join(WORDS[i : i + 25]) for i in range(0, 60, 7)]),
    ("tea", ["coffee and tea", "tea", "green tea from england"]),
    ("cat dog pet", TEXTS[::-1]),
    ("music", ["guitar and piano", "a song", "rocket to the moon"]),
]


class HeldCrossEncoder(HuggingFaceReranker):
    """The tiny cross-encoder, whose model calls wait while ``hold`` is clear (to line requests up)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold = threading.Event()
        self.hold.set()

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        self.hold.wait(timeout=60)
        return super().score_many(requests)


@pytest.fixture(scope="module")
def held(tiny_cross_encoder: Path) -> HeldCrossEncoder:
    return HeldCrossEncoder({"model": str(tiny_cross_encoder), "dtype": "float32"})


@pytest.fixture(scope="module")
def batching_server(held: HeldCrossEncoder) -> Iterator[RunningServer]:
    server = RunningServer(held, served_model_name="tiny")
    server.wait_ready()
    yield server
    server.stop()


def post_all(server: RunningServer, requests: Sequence[tuple[str, Sequence[str]]]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            calls = [http.post("/rerank", json={"query": q, "documents": list(d)}) for q, d in requests]
            return [response.json() for response in await asyncio.gather(*calls)]

    return asyncio.run(run())


def test_concurrent_requests_share_one_model_call_with_unchanged_scores(
    batching_server: RunningServer, held: HeldCrossEncoder, tiny_reranker: BaseReranker
) -> None:
    held.hold.clear()  # the first request occupies the model; the others queue up behind it
    first = threading.Thread(target=post_all, args=(batching_server, [(QUERY, TEXTS)]))
    first.start()
    wait_until(lambda: batching_server.service.queue.outstanding == 1, what="the first request")
    before = batching_server.metrics()
    answers: list[dict[str, Any]] = []
    rest = threading.Thread(target=lambda: answers.extend(post_all(batching_server, REQUESTS)))
    rest.start()
    wait_until(lambda: batching_server.service.queue.outstanding == 1 + len(REQUESTS), what="the queue")
    held.hold.set()
    first.join(60)
    rest.join(60)
    after = batching_server.metrics()
    for (query, texts), answer in zip(REQUESTS, answers, strict=True):
        alone = tiny_reranker.rank(query, texts)  # the same model scoring this request by itself
        assert [r["index"] for r in answer["results"]] == alone.indices
        assert [r["relevance_score"] for r in answer["results"]] == pytest.approx(
            [item.score for item in alone.items], abs=1e-5
        )
        assert answer["usage"]["total_tokens"] > len(texts)
    pairs = sum(len(d) for _, d in REQUESTS)
    assert after["rerank_batch_requests_count"] - before["rerank_batch_requests_count"] == 1
    assert after["rerank_batch_requests_sum"] - before["rerank_batch_requests_sum"] == len(REQUESTS)
    assert after["rerank_batch_pairs_sum"] - before["rerank_batch_pairs_sum"] == pairs
    assert after['rerank_batch_requests_bucket{le="4.0"}'] == before['rerank_batch_requests_bucket{le="4.0"}']


def test_a_group_closes_at_max_batch_pairs(held: HeldCrossEncoder, tiny_reranker: BaseReranker) -> None:
    server = RunningServer(held, served_model_name="tiny", max_batch_pairs=10)
    try:
        server.wait_ready()
        held.hold.clear()
        first = threading.Thread(target=post_all, args=(server, [(QUERY, TEXTS)]))
        first.start()
        wait_until(lambda: server.service.queue.outstanding == 1, what="the first request")
        answers: list[dict[str, Any]] = []
        rest = threading.Thread(target=lambda: answers.extend(post_all(server, [(QUERY, TEXTS)] * 4)))
        rest.start()
        wait_until(lambda: server.service.queue.outstanding == 5, what="the queue")
        held.hold.set()
        first.join(60)
        rest.join(60)
        metrics = server.metrics()
        assert metrics["rerank_batch_requests_count"] == 3  # 7 pairs alone, then 7 + 7 >= 10 twice
        assert metrics["rerank_batch_pairs_sum"] == 5 * len(TEXTS)
        assert all(
            [r["index"] for r in a["results"]] == tiny_reranker.rank(QUERY, TEXTS).indices for a in answers
        )
    finally:
        held.hold.set()
        server.stop()


def test_requests_one_after_another_are_scored_alone(batching_server: RunningServer) -> None:
    """Nobody else is arriving, so no request waits for company (each model call holds one)."""
    before = batching_server.metrics()
    with batching_server.client() as http:
        for _ in range(3):
            assert http.post("/rerank", json={"query": QUERY, "documents": TEXTS}).status_code == 200
    after = batching_server.metrics()
    singles = (
        after['rerank_batch_requests_bucket{le="1.0"}'] - before['rerank_batch_requests_bucket{le="1.0"}']
    )
    assert singles == 3
