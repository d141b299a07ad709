"""Exchanges: LLM logic written once, run sync or async.

An exchange is a generator that yields requests and receives their answers (``reply = yield
request``) until it returns its result; an answer that failed with a ProviderError is thrown back in
at the ``yield``. ``drive`` answers with a sync call, ``adrive`` with an async one, so the same
exchange serves ``score`` and ``ascore``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Generic, TypeVar

from core.errors import ProviderError

Q = TypeVar("Q")
A = TypeVar("A")
R = TypeVar("R")

Exchange = Generator[Q, A, R]


class _Progress(Generic[Q, A, R]):
    """Where one exchange stands: the pending request, or the result once it returned."""

    def __init__(self, exchange: Exchange[Q, A, R]) -> None:
        self.exchange = exchange
        self.done = False
        self.result: R
        self.request: Q
        self._step(lambda: next(exchange))

    def answered(self, reply: A) -> None:
        self._step(lambda: self.exchange.send(reply))

    def failed(self, error: ProviderError) -> None:
        self._step(lambda: self.exchange.throw(error))

    def _step(self, advance: Callable[[], Q]) -> None:
        try:
            self.request = advance()
        except StopIteration as finished:
            self.done, self.result = True, finished.value


def drive(exchange: Exchange[Q, A, R], answer: Callable[[Q], A]) -> R:
    """Run ``exchange``, answering each request with ``answer(request)``; return its result."""
    progress = _Progress(exchange)
    while not progress.done:
        try:
            reply = answer(progress.request)
        except ProviderError as error:
            progress.failed(error)
        else:
            progress.answered(reply)
    return progress.result


async def adrive(exchange: Exchange[Q, A, R], answer: Callable[[Q], Awaitable[A]]) -> R:
    """Async ``drive``: each request is answered by ``await answer(request)``."""
    progress = _Progress(exchange)
    while not progress.done:
        try:
            reply = await answer(progress.request)
        except ProviderError as error:
            progress.failed(error)
        else:
            progress.answered(reply)
    return progress.result
