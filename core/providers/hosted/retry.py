"""The one retry policy of a hosted call, run by tenacity's ``Retrying`` (sync) or ``AsyncRetrying``.

Backoff with full jitter, at least what the server's Retry-After asked (both capped at
``max_retry_wait``); at most ``max_retries`` retries; each attempt bounded by ``timeout`` and the
whole call by ``deadline``, and no retry is started that the deadline would cut short.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from core.errors import ProviderError
from core.providers.hosted.config import ApiRerankerConfig

#: Seconds an attempt needs at least; a retry that would get less before the deadline is not made.
MIN_ATTEMPT_SECONDS = 0.05
#: Extra seconds an async attempt may take past ``timeout`` before it is abandoned (the SDK's own
#: timeout should end it first).
ASYNC_GRACE_SECONDS = 1.0

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Retry provider errors marked retryable (429, 408, 409, 5xx, connection, timeout)."""
    return isinstance(exc, ProviderError) and exc.retryable


class Deadline:
    """The end of one call, ``seconds`` from now; None: no end."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (negative once passed), or None without a deadline."""
        return None if self.end is None else self.end - time.monotonic()


class RetryPolicy:
    """Retries, timeouts and the deadline of one call; ``run`` / ``arun`` send one request under them.

    A request is ``request(timeout)``; an error it raises that is not a ProviderError goes
    through ``classify`` (which decides whether it is worth a retry).
    """

    def __init__(
        self, provider: str, config: ApiRerankerConfig, classify: Callable[[Exception], ProviderError]
    ) -> None:
        self.provider = provider
        self.config = config
        self.classify = classify
        self.deadline = Deadline(config.deadline)

    def run(self, request: Callable[[float], T]) -> T:
        """``request(timeout)`` until it succeeds, fails for good, or retries or deadline run out."""
        result: T = Retrying(**self._schedule())(self._attempt, request)
        return result

    async def arun(self, request: Callable[[float], Awaitable[T]]) -> T:
        """Async ``run``: an attempt that outlives its timeout is cancelled."""
        result: T = await AsyncRetrying(**self._schedule())(self._aattempt, request)
        return result

    def attempt_timeout(self) -> float:
        """Seconds the next attempt may take: ``timeout``, less when the deadline is nearer."""
        remaining = self.deadline.remaining()
        timeout = self.config.timeout if remaining is None else min(self.config.timeout, remaining)
        if timeout <= 0:
            raise ProviderError(f"deadline of {self.config.deadline:g}s exceeded", provider=self.provider)
        return timeout

    def _attempt(self, request: Callable[[float], T]) -> T:
        with self._classified():
            return request(self.attempt_timeout())

    async def _aattempt(self, request: Callable[[float], Awaitable[T]]) -> T:
        timeout = self.attempt_timeout()
        with self._classified():
            try:
                return await asyncio.wait_for(request(timeout), timeout + ASYNC_GRACE_SECONDS)
            except asyncio.TimeoutError as exc:
                raise ProviderError(
                    f"no answer within {timeout:.1f}s", provider=self.provider, retryable=True
                ) from exc

    @contextmanager
    def _classified(self) -> Iterator[None]:
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            raise self.classify(exc) from exc

    def _schedule(self) -> dict[str, Any]:
        """tenacity arguments: retry what is retryable; stop on max_retries or before the deadline."""
        backoff = wait_random_exponential(multiplier=0.5, max=self.config.max_retry_wait)
        planned: dict[int, float] = {}

        def wait(state: RetryCallState) -> float:
            # One draw per attempt: stop() and the actual sleep must agree on the same jittered wait.
            if state.attempt_number not in planned:
                exc = state.outcome.exception() if state.outcome else None
                seconds = backoff(state)
                if isinstance(exc, ProviderError) and exc.retry_after is not None:
                    seconds = max(seconds, exc.retry_after)
                planned[state.attempt_number] = min(seconds, self.config.max_retry_wait)
            return planned[state.attempt_number]

        def stop(state: RetryCallState) -> bool:
            if stop_after_attempt(self.config.max_retries + 1)(state):
                return True
            remaining = self.deadline.remaining()
            return remaining is not None and remaining <= wait(state) + MIN_ATTEMPT_SECONDS

        return {"retry": retry_if_exception(is_retryable), "stop": stop, "wait": wait, "reraise": True}
