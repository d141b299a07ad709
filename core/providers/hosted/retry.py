"""The one retry policy of a hosted call, run by tenacity's ``Retrying`` (sync) or ``AsyncRetrying``.

Backoff with full jitter, at least what the server's Retry-After asked (both capped at
``max_retry_wait``); at most ``max_retries`` retries; each attempt bounded by ``timeout`` and the
whole call by ``deadline``, and no retry is started that the deadline would cut short. An attempt
first takes a slot of the call tree's ``RequestLimit`` (``max_concurrency`` requests in flight),
then runs under ``attempt_clock``: each network operation it makes gets only the time left.
"""

from __future__ import annotations

import asyncio
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

from core.concurrency import RequestLimit, SlotTimeout
from core.errors import ProviderError
from core.providers.hosted.clock import Deadline, attempt_clock
from core.providers.hosted.config import ApiRerankerConfig

__all__ = ["ASYNC_GRACE_SECONDS", "MIN_ATTEMPT_SECONDS", "Deadline", "RetryPolicy", "is_retryable"]

#: Seconds an attempt needs at least; a retry that would get less before the deadline is not made.
MIN_ATTEMPT_SECONDS = 0.05
#: Extra seconds an async attempt may take past its time before it is cancelled (a backstop: the
#: attempt clock ends its network operations first).
ASYNC_GRACE_SECONDS = 1.0

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """Retry provider errors marked retryable (429, 408, 409, 5xx, connection, timeout)."""
    return isinstance(exc, ProviderError) and exc.retryable


class RetryPolicy:
    """Retries, timeouts and the deadline of one call; ``run`` / ``arun`` send one request under them.

    A request is ``request(timeout)``; an error it raises that is not a ProviderError goes
    through ``classify`` (which decides whether it is worth a retry). Each attempt holds a slot of
    ``limit`` (a new one of ``max_concurrency`` slots when none is given).
    """

    def __init__(
        self,
        provider: str,
        config: ApiRerankerConfig,
        classify: Callable[[Exception], ProviderError],
        limit: RequestLimit | None = None,
    ) -> None:
        self.provider = provider
        self.config = config
        self.classify = classify
        self.limit = limit or RequestLimit(config.max_concurrency)
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
        with self._slot_waits(), self.limit.hold(self.deadline.remaining()):
            timeout = self.attempt_timeout()
            with attempt_clock(timeout), self._classified():
                return request(timeout)

    async def _aattempt(self, request: Callable[[float], Awaitable[T]]) -> T:
        with self._slot_waits():
            async with self.limit.ahold(self.deadline.remaining()):
                timeout = self.attempt_timeout()
                with attempt_clock(timeout), self._classified():
                    try:
                        return await asyncio.wait_for(request(timeout), timeout + ASYNC_GRACE_SECONDS)
                    except asyncio.TimeoutError as exc:
                        raise ProviderError(
                            f"no answer within {timeout:.1f}s", provider=self.provider, retryable=True
                        ) from exc

    @contextmanager
    def _slot_waits(self) -> Iterator[None]:
        """A deadline that passed while waiting for a request slot is the deadline exceeded."""
        try:
            yield
        except SlotTimeout as exc:
            raise ProviderError(
                f"deadline of {self.config.deadline:g}s exceeded waiting for one of "
                f"{self.limit.size} request slots",
                provider=self.provider,
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
