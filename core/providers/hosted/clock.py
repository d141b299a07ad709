"""The one clock of a hosted call: the call's deadline, and the end of the attempt in progress.

``RetryPolicy`` starts an attempt with ``attempt_clock(seconds)``; every network operation made
inside it (connect, TLS, each write, each read of headers or body) then gets at most the time left
(``capped``), sync or async, so a server that drips its answer cannot stretch the attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: The monotonic time the attempt in progress (in this thread or task) must end by.
_attempt_end: ContextVar[float | None] = ContextVar("rerank_layer_attempt_end", default=None)


class Deadline:
    """The end of one call, ``seconds`` from now; None: no end."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (negative once passed), or None without a deadline."""
        return None if self.end is None else self.end - time.monotonic()


@contextmanager
def attempt_clock(seconds: float) -> Iterator[None]:
    """Bound every network operation inside the block to end within ``seconds`` from now."""
    token = _attempt_end.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _attempt_end.reset(token)


def time_left() -> float | None:
    """Seconds left on the attempt in progress (negative once passed); None outside an attempt."""
    end = _attempt_end.get()
    return None if end is None else end - time.monotonic()


def capped(timeout: float | None, expired: Callable[[str], Exception]) -> float | None:
    """``timeout`` shortened to the time left on the attempt; raise ``expired(message)`` when none is."""
    left = time_left()
    if left is None:
        return timeout
    if left <= 0:
        raise expired("the attempt ran out of time")
    return left if timeout is None else min(timeout, left)
