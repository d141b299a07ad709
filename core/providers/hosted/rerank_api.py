"""Hosted rerank endpoints (query and documents in; ``index`` / ``relevance_score`` results out).

A provider gives the SDK method, its extra parameters, the usage in a response and its error
classification; this base splits long lists into requests of ``documents_per_request``, sends them
concurrently under one retry policy (``max_concurrency`` requests in flight) and merges the scores
back in input order.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from core.concurrency import gather_or_cancel
from core.providers.hosted.base import ApiReranker
from core.providers.hosted.responses import scores_from_results
from core.results import Scores, merge_usage


def merge_chunks(parts: Sequence[tuple[int, Scores]]) -> Scores:
    """One Scores from ``(start, scores)`` parts in input order; flags re-indexed, usage summed."""
    values: list[float] = []
    flags: dict[int, str] = {}
    for start, part in parts:
        values.extend(part)
        flags.update({start + i: msg for i, msg in part.flags.items()})
    return Scores(values, usage=merge_usage(*(p.usage for _, p in parts)), flags=flags)


class RerankApiReranker(ApiReranker):
    """A hosted rerank endpoint: ``rerank_call`` on the SDK client with ``model``, ``query``, ``documents``.

    A provider adds ``_params`` (its other arguments, the attempt's timeout among them) and
    ``_usage`` (what a response says was billed); results are checked by ``scores_from_results``.
    """

    #: The SDK client's rerank method, as a dotted attribute path (``"models.rerank"``).
    rerank_call: ClassVar[str] = "rerank"

    def _params(self, timeout: float) -> dict[str, Any]:
        """Arguments beyond model, query and documents (default: the timeout)."""
        return {"timeout": timeout}

    def _usage(self, response: Any) -> dict[str, float]:
        """Usage counts a response reports (default: none)."""
        return {}

    def _arguments(self, query: str, texts: Sequence[str], timeout: float) -> dict[str, Any]:
        return {"model": self.config.model, "query": query, "documents": list(texts), **self._params(timeout)}

    def _read(self, response: Any, n: int) -> Scores:
        results = getattr(response, "results", None)
        return scores_from_results(results, n, provider=self.provider, usage=self._usage(response))

    def _request(self, client: Any, query: str, texts: Sequence[str], timeout: float) -> Scores:
        """Score one chunk with one request."""
        send = operator.attrgetter(self.rerank_call)(client)
        return self._read(send(**self._arguments(query, texts, timeout)), len(texts))

    async def _arequest(self, client: Any, query: str, texts: Sequence[str], timeout: float) -> Scores:
        """Async ``_request``."""
        send = operator.attrgetter(self.rerank_call)(client)
        return self._read(await send(**self._arguments(query, texts, timeout)), len(texts))

    def _chunks(self, texts: Sequence[str]) -> list[tuple[int, Sequence[str]]]:
        size = self.config.documents_per_request
        return [(i, texts[i : i + size]) for i in range(0, len(texts), size)]

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """Scores for ``texts``: chunked, concurrent, retried, bounded by the deadline."""
        if not texts:
            return Scores([])
        client, policy = self.client(), self.retry_policy()  # the deadline starts after setup

        def chunk(start: int, part: Sequence[str]) -> tuple[int, Scores]:
            return start, policy.run(lambda timeout: self._request(client, query, part, timeout))

        chunks = self._chunks(texts)
        if len(chunks) == 1:
            return chunk(*chunks[0])[1]
        pool = ThreadPoolExecutor(max_workers=min(len(chunks), self.config.max_concurrency))
        try:
            parts = list(pool.map(lambda c: chunk(*c), chunks))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # one chunk failed: do not start the rest
        return merge_chunks(parts)

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        """Async ``score`` on the async SDK client; chunks run concurrently, ``max_concurrency`` in flight.

        When one chunk fails for good, the chunks still in flight are cancelled.
        """
        client, policy = await self.aclient(), self.retry_policy()

        async def chunk(start: int, part: Sequence[str]) -> tuple[int, Scores]:
            return start, await policy.arun(lambda timeout: self._arequest(client, query, part, timeout))

        return merge_chunks(await gather_or_cancel(*(chunk(s, c) for s, c in self._chunks(texts))))
