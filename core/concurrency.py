"""Concurrency of one call tree: one cap on requests in flight, and gathering that cancels on failure.

``max_concurrency`` means requests in flight: every request of a call (each chunk, each document,
each retry attempt) holds a slot of one ``RequestLimit`` while it is sent. ``rerank_many`` /
``arerank_many`` share one limit among all their queries (``sharing_limit``); a single call gets
its own (``request_limit``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")


class SlotTimeout(Exception):
    """No request slot became free within the time allowed."""


class RequestLimit:
    """At most ``size`` requests in flight: threads hold a slot with ``hold``, tasks with ``ahold``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._threads = threading.BoundedSemaphore(size)
        self._tasks: asyncio.Semaphore | None = None

    @contextmanager
    def hold(self, timeout: float | None = None) -> Iterator[None]:
        """Hold a slot for the block; raise SlotTimeout when none is free within ``timeout`` seconds."""
        if not self._threads.acquire(timeout=None if timeout is None else max(0.0, timeout)):
            raise SlotTimeout(f"no request slot free within {timeout:.1f}s")
        try:
            yield
        finally:
            self._threads.release()

    @asynccontextmanager
    async def ahold(self, timeout: float | None = None) -> AsyncIterator[None]:
        """Async ``hold``."""
        if self._tasks is None:
            self._tasks = asyncio.Semaphore(self.size)
        try:
            await asyncio.wait_for(self._tasks.acquire(), None if timeout is None else max(0.0, timeout))
        except asyncio.TimeoutError as exc:
            raise SlotTimeout(f"no request slot free within {timeout:.1f}s") from exc
        try:
            yield
        finally:
            self._tasks.release()


#: The limit shared by the ``rerank_many`` in progress, and the reranker it belongs to.
_shared: ContextVar[tuple[object, RequestLimit] | None] = ContextVar("rerank_layer_limit", default=None)


@contextmanager
def sharing_limit(owner: object, size: int) -> Iterator[RequestLimit]:
    """Inside the block (and threads or tasks started from its context), ``owner``'s calls share one limit."""
    limit = RequestLimit(size)
    token = _shared.set((owner, limit))
    try:
        yield limit
    finally:
        _shared.reset(token)


def request_limit(owner: object, size: int) -> RequestLimit:
    """The limit ``owner``'s requests hold: that of its ``rerank_many`` in progress, else a new one."""
    shared = _shared.get()
    if shared is not None and shared[0] is owner:
        return shared[1]
    return RequestLimit(size)


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` that cancels the others as soon as one fails, and waits for them to end."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
