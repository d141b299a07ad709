"""Shared base for network providers: chunked concurrent requests, retries, deadlines."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from core.base import BaseReranker
from core.config import RerankerConfig
from core.errors import ProviderError
from core.results import Scores, merge_usage

#: HTTP statuses worth another attempt.
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class ApiRerankerConfig(RerankerConfig):
    """Fields every hosted provider shares."""

    api_key: SecretStr | None = Field(default=None, description="API key; else the provider's env var.")
    base_url: str | None = Field(default=None, description="API root; None uses the provider default.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds allowed for one attempt.")
    max_retries: int = Field(default=3, ge=0, description="Extra attempts after a retryable failure.")
    deadline: float | None = Field(
        default=60.0, gt=0, description="Seconds for the whole call, retries included; None: no bound."
    )
    max_retry_wait: float = Field(
        default=20.0, ge=0, description="Cap in seconds on one wait between attempts (Retry-After too)."
    )
    documents_per_request: int = Field(
        default=100, ge=1, description="Documents per API request; larger lists are split and sent at once."
    )


def is_retryable(exc: BaseException) -> bool:
    """Retry provider errors marked retryable (429, 408, 409, 5xx, connection, timeout)."""
    return isinstance(exc, ProviderError) and exc.retryable


class _Clock:
    """The deadline of one call."""

    def __init__(self, deadline: float | None) -> None:
        self.end = None if deadline is None else time.monotonic() + deadline

    def remaining(self) -> float | None:
        return None if self.end is None else self.end - time.monotonic()


class ApiReranker(BaseReranker):
    """A hosted reranker: implement ``_request`` / ``_arequest`` for one chunk and ``_classify``.

    ``score`` splits the texts into chunks of ``documents_per_request``, sends them
    concurrently, retries each with exponential backoff and jitter (honouring the
    server's Retry-After, capped), bounds each attempt by ``timeout`` and the whole
    call by ``deadline``, and merges scores and usage back in input order.
    """

    io_bound: ClassVar[bool] = True
    config_class: ClassVar[type[RerankerConfig]] = ApiRerankerConfig
    config: ApiRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._lock = threading.Lock()
        self._sync_client: Any = None
        self._async_clients: dict[int, Any] = {}

    # --- what a provider implements ------------------------------------------------------
    @abstractmethod
    def _make_client(self, asynchronous: bool) -> Any:
        """A new SDK client (async if asked), with the SDK's own retries off."""

    @abstractmethod
    def _request(self, client: Any, query: str, texts: Sequence[str], timeout: float) -> Scores:
        """Score one chunk with one HTTP request; raise anything on failure."""

    @abstractmethod
    async def _arequest(self, client: Any, query: str, texts: Sequence[str], timeout: float) -> Scores:
        """Async twin of ``_request``."""

    @abstractmethod
    def _classify(self, exc: Exception) -> ProviderError:
        """Turn an SDK or transport error into a ProviderError (status, retryable, retry_after)."""

    # --- clients -----------------------------------------------------------------------
    def client(self) -> Any:
        """The sync SDK client, created on first use."""
        with self._lock:
            if self._sync_client is None:
                self._sync_client = self._make_client(False)
            return self._sync_client

    def aclient(self) -> Any:
        """The async SDK client of the running event loop, created on first use there."""
        loop_id = id(asyncio.get_running_loop())
        with self._lock:
            if loop_id not in self._async_clients:
                self._async_clients[loop_id] = self._make_client(True)
            return self._async_clients[loop_id]

    def api_key(self, *env_vars: str) -> str | None:
        """The configured key, else the first of ``env_vars`` that is set."""
        import os

        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        return next((os.environ[v] for v in env_vars if os.environ.get(v)), None)

    # --- retry policy ------------------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = min(self.config.max_retry_wait, 0.5 * 2 ** (state.attempt_number - 1))
        wait = random.uniform(0, backoff)  # full jitter
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return min(wait, self.config.max_retry_wait)

    def _retry_kwargs(self, clock: _Clock) -> dict[str, Any]:
        def stop(state: RetryCallState) -> bool:
            if stop_after_attempt(self.config.max_retries + 1)(state):
                return True
            remaining = clock.remaining()
            return remaining is not None and remaining <= self._wait(state)

        return {
            "retry": retry_if_exception(is_retryable),
            "stop": stop,
            "wait": self._wait,
            "reraise": True,
        }

    def _attempt_timeout(self, clock: _Clock) -> float:
        remaining = clock.remaining()
        timeout = self.config.timeout if remaining is None else min(self.config.timeout, remaining)
        if timeout <= 0:
            raise ProviderError("deadline exceeded", provider=self.provider, retryable=False)
        return timeout

    def _one(self, query: str, texts: Sequence[str], clock: _Clock) -> Scores:
        for attempt in Retrying(**self._retry_kwargs(clock)):
            with attempt:
                try:
                    return self._request(self.client(), query, texts, self._attempt_timeout(clock))
                except ProviderError:
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a typed error
                    raise self._classify(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aone(self, query: str, texts: Sequence[str], clock: _Clock) -> Scores:
        async for attempt in AsyncRetrying(**self._retry_kwargs(clock)):
            with attempt:
                timeout = self._attempt_timeout(clock)
                try:
                    return await asyncio.wait_for(
                        self._arequest(self.aclient(), query, texts, timeout), timeout + 1.0
                    )
                except ProviderError:
                    raise
                except asyncio.TimeoutError as exc:
                    raise ProviderError(
                        f"no answer within {timeout:.1f}s", provider=self.provider, retryable=True
                    ) from exc
                except Exception as exc:  # noqa: BLE001 - mapped to a typed error
                    raise self._classify(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- the score contract ------------------------------------------------------------
    def _chunks(self, texts: Sequence[str]) -> list[tuple[int, Sequence[str]]]:
        size = self.config.documents_per_request
        return [(i, texts[i : i + size]) for i in range(0, len(texts), size)]

    @staticmethod
    def _merge(parts: list[tuple[int, Scores]]) -> Scores:
        values: list[float] = []
        flags: dict[int, str] = {}
        for start, part in parts:
            values.extend(part)
            flags.update({start + i: msg for i, msg in part.flags.items()})
        return Scores(values, usage=merge_usage(*(p.usage for _, p in parts)), flags=flags)

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """Scores for ``texts``: chunked, concurrent, retried, bounded by the deadline."""
        clock = _Clock(self.config.deadline)
        chunks = self._chunks(texts)
        if len(chunks) == 1:
            return self._one(query, texts, clock)
        with ThreadPoolExecutor(max_workers=min(len(chunks), self.config.max_concurrency)) as pool:
            parts = list(pool.map(lambda c: (c[0], self._one(query, c[1], clock)), chunks))
        return self._merge(parts)

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        """Async ``score`` on the async SDK client; chunks run concurrently under ``max_concurrency``."""
        clock = _Clock(self.config.deadline)
        limit = asyncio.Semaphore(self.config.max_concurrency)

        async def run(start: int, chunk: Sequence[str]) -> tuple[int, Scores]:
            async with limit:
                return start, await self._aone(query, chunk, clock)

        parts = await asyncio.gather(*(run(s, c) for s, c in self._chunks(texts)))
        return self._merge(list(parts))
