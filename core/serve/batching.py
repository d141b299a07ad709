"""Batching across requests: concurrent requests' pairs scored together by one ``score_many`` call.

The queue gathers requests while more are arriving, for at most ``max_wait`` after the first and up
to ``max_pairs`` pairs, then hands the group to the reranker's ``score_many`` on the model thread
(local models sort every pair of the group by length into shared batches). A request alone in the
server is scored at once. Each request's scores are the ones it would get alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field

from core.base import BaseReranker
from core.errors import ProviderError
from core.normalize import ScoreScale

logger = logging.getLogger("rerank_layer.serve")

ScoreMany = Callable[[list[tuple[str, Sequence[str]]]], list[list[float]]]


def batches_requests(reranker: BaseReranker) -> bool:
    """True when ``reranker`` scores several requests together (its class overrides ``score_many``)."""
    return type(reranker).score_many is not BaseReranker.score_many


@dataclass
class Timing:
    """Seconds one request spent in model calls (reported in the ``Server-Timing`` header)."""

    model: float = 0.0


#: The current request's ``Timing``: the queue adds the duration of the model call that scored it.
REQUEST_TIMING: ContextVar[Timing | None] = ContextVar("rerank_request_timing", default=None)


@dataclass
class _Pending:
    query: str
    texts: Sequence[str]
    future: asyncio.Future[list[float]] = field(repr=False)
    model_seconds: float = 0.0


class BatchQueue:
    """Requests waiting to be scored, and the one task that scores them group by group.

    ``arriving()`` tells whether more requests are on their way (admitted by the server but not
    yet queued): only then does a group wait for them, at most ``max_wait`` seconds.
    ``on_batch(requests, pairs)`` is called for every model call.
    """

    def __init__(
        self,
        score_many: ScoreMany,
        *,
        max_pairs: int,
        max_wait: float,
        arriving: Callable[[], bool] = lambda: False,
        on_batch: Callable[[int, int], None] = lambda requests, pairs: None,
    ) -> None:
        self._score_many = score_many
        self.max_pairs = max_pairs
        self.max_wait = max_wait
        self._arriving = arriving
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank-model")
        self._worker: asyncio.Task[None] | None = None
        self.outstanding = 0  # requests queued or being scored

    def start(self) -> None:
        """Start the worker task (on the running loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="rerank-batch-queue")

    async def stop(self) -> None:
        """Score what is queued, then end the worker."""
        if self._worker is not None:
            await self._queue.put(None)
            await self._worker
            self._worker = None
        self._model_thread.shutdown(wait=False)

    async def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Raw scores of ``texts`` for ``query``, scored with whatever other requests are waiting."""
        pending = _Pending(query, texts, asyncio.get_running_loop().create_future())
        self.outstanding += 1
        try:
            await self._queue.put(pending)
            scores = await pending.future
        finally:
            self.outstanding -= 1
        timing = REQUEST_TIMING.get()
        if timing is not None:
            timing.model += pending.model_seconds
        return scores

    async def _run(self) -> None:
        while True:
            group, stop = await self._gather()
            if group:
                await self._score(group)
            if stop:
                return

    async def _gather(self) -> tuple[list[_Pending], bool]:
        """The next group: the first request, then others while they arrive (bounded wait and size)."""
        first = await self._queue.get()
        while first is not None and first.future.done():  # timed out while queued: no room, no wait
            first = await self._queue.get()
        if first is None:
            return [], True
        group, pairs = [first], len(first.texts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while pairs < self.max_pairs:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0 or not self._arriving():
                    break
                arrived, item = await self._next(remaining)
                if not arrived:
                    break
            else:
                item = self._queue.get_nowait()
            if item is None:
                return group, True
            if not item.future.done():  # a request that timed out while queued takes no room
                group.append(item)
                pairs += len(item.texts)
        return group, False

    async def _next(self, timeout: float) -> tuple[bool, _Pending | None]:
        """(True, the next queued item), or (False, None) after ``timeout``.

        A ``Queue.get`` that has not returned has taken nothing, so cancelling it loses no request.
        """
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({getter}, timeout=timeout)
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return True, getter.result()
        return False, None

    async def _score(self, group: list[_Pending]) -> None:
        live = [item for item in group if not item.future.done()]  # a timed-out request is dropped
        if not live:
            return
        loop = asyncio.get_running_loop()
        requests = [(item.query, item.texts) for item in live]
        self._on_batch(len(live), sum(len(texts) for _, texts in requests))
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._model_thread, self._checked, requests)
        except Exception as exc:
            if len(live) > 1:  # one bad request must not fail the others: score each alone
                for item in live:
                    await self._score([item])
                return
            _settle(live[0].future, exc)
            return
        elapsed = time.perf_counter() - started
        for item, scores in zip(live, results, strict=True):
            item.model_seconds = elapsed
            _settle(item.future, scores)

    def _checked(self, requests: list[tuple[str, Sequence[str]]]) -> list[list[float]]:
        results = self._score_many(requests)
        if len(results) != len(requests):
            raise ProviderError(
                f"score_many returned {len(results)} score lists for {len(requests)} requests",
                provider="serve",
            )
        return results


def _settle(future: asyncio.Future[list[float]], outcome: list[float] | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class QueuedReranker(BaseReranker):
    """The served reranker with its own scoring sent through a ``BatchQueue``.

    Everything else is the served reranker's: config, fallbacks, score scale and the shared
    pipeline (validation, normalisation, top_n, fallbacks, ``on_error``).
    """

    def __init__(self, inner: BaseReranker, queue: BatchQueue) -> None:
        super().__init__(inner.config, fallbacks=inner.fallbacks)
        self.inner = inner
        self.queue = queue
        self.provider = inner.provider  # type: ignore[misc]  # rankings and logs name the real provider

    @property
    def scale(self) -> ScoreScale:
        """The served reranker's score scale."""
        return self.inner.scale

    @property
    def model_name(self) -> str:
        """The served reranker's model."""
        return self.inner.model_name

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Scores without the queue (the server always goes through ``ascore``)."""
        return self.inner.score(query, texts)

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        """Scores from the queue, computed together with other waiting requests."""
        return await self.queue.score(query, texts)

    def __repr__(self) -> str:
        return f"QueuedReranker({self.inner!r})"
