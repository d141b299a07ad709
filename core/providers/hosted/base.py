"""Shared base for network providers: chunked concurrent requests, retries, deadlines."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import weakref
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, TypeVar

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
#: Seconds an attempt needs at least; a retry that would get less before the deadline is not made.
MIN_ATTEMPT_SECONDS = 0.05

T = TypeVar("T")


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


# --- helpers every hosted provider shares ------------------------------------------------
def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    candidates: list[float | None] = []
    if "retry-after-ms" in lowered:
        ms = _as_float(lowered["retry-after-ms"])
        candidates.append(None if ms is None else ms / 1000.0)
    if "retry-after" in lowered:
        value = lowered["retry-after"]
        seconds = _as_float(value)
        if seconds is None:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                seconds = (when - datetime.now(timezone.utc)).total_seconds()
        candidates.append(seconds)
    found = next((c for c in candidates if c is not None), None)
    return None if found is None else max(0.0, found)


def _as_float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def error_message(body: object, default: str = "", limit: int = 300) -> str:
    """The provider's own words from an error body (``message``, ``error.message``, ``detail``), shortened."""
    message: object = body
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            message = error["message"]
        else:
            message = next((body[k] for k in ("message", "detail", "error") if body.get(k)), body)
    text = str(message).strip() if message not in (None, "", b"") else default
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_error(
    provider: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """A ProviderError for an HTTP error status: retryable for 408, 409, 429, 5xx, with Retry-After parsed."""
    return ProviderError(
        message,
        provider=provider,
        status=status,
        retryable=status in RETRYABLE_STATUSES,
        retry_after=retry_after_seconds(headers),
    )


def _field(item: object, name: str) -> object:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def scores_from_results(
    results: object,
    n: int,
    *,
    provider: str,
    top_n: int | None = None,
    usage: Mapping[str, float] | None = None,
) -> Scores:
    """Check a rerank API's ``results`` (items with ``index``, ``relevance_score``); scores in input order.

    Every index must be an int in ``[0, n)`` and unique, every score a finite number, and there must be one
    result per document (``min(top_n, n)`` when ``top_n`` was sent). Documents outside an API ``top_n`` get a
    placeholder, are listed in ``Scores.unscored`` and flagged; the pipeline ranks them after the scored ones.
    Anything else raises a (non-retryable) ProviderError.
    """
    if not isinstance(results, (list, tuple)):
        raise ProviderError(f"response has no results list (got {type(results).__name__})", provider=provider)
    expected = n if top_n is None else min(top_n, n)
    if len(results) != expected:
        raise ProviderError(f"got {len(results)} results for {expected} documents", provider=provider)
    values: list[float | None] = [None] * n
    for position, item in enumerate(results):
        index, score = _field(item, "index"), _field(item, "relevance_score")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ProviderError(
                f"result {position} has index {index!r}, not in 0..{n - 1}", provider=provider
            )
        if values[index] is not None:
            raise ProviderError(f"index {index} appears twice in the results", provider=provider)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ProviderError(f"result {position} (index {index}) has score {score!r}", provider=provider)
        values[index] = float(score)
    unscored = [i for i, v in enumerate(values) if v is None]
    note = f"not scored: outside the top_n={top_n} results the API returned"
    return Scores(
        [0.0 if v is None else v for v in values],
        usage=usage,
        flags=dict.fromkeys(unscored, note),
        unscored=unscored,
    )


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` that cancels the other awaitables as soon as one fails."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


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
    #: True when the API accepts ``top_n``; ``_request`` / ``_arequest`` then may get ``top_n=``.
    sends_top_n: ClassVar[bool] = False
    config: ApiRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._lock = threading.Lock()
        self._sync_client: Any = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    # --- what a provider implements ------------------------------------------------------
    @abstractmethod
    def _make_client(self, asynchronous: bool) -> Any:
        """A new SDK client (async if asked), with the SDK's own retries off."""

    @abstractmethod
    def _request(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        """Score one chunk with one HTTP request; raise anything on failure.

        ``top_n`` is passed only to providers with ``sends_top_n`` (and only when it saves work).
        """

    @abstractmethod
    async def _arequest(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
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

    def warmup(self) -> None:
        """Create the sync SDK client now, so the first call spends no deadline on setup."""
        self.client()

    def aclient(self) -> Any:
        """The async SDK client of the running event loop, created on first use there.

        Keyed by the loop object itself (weakly): a client never outlives its loop or
        gets reused by a new loop that happens to have the same ``id``.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                client = self._async_clients[loop] = self._make_client(True)
            return client

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
        planned: dict[int, float] = {}

        def wait(state: RetryCallState) -> float:
            # One draw per attempt: stop() and the actual sleep must agree on the same jittered wait.
            if state.attempt_number not in planned:
                planned[state.attempt_number] = self._wait(state)
            return planned[state.attempt_number]

        def stop(state: RetryCallState) -> bool:
            if stop_after_attempt(self.config.max_retries + 1)(state):
                return True
            remaining = clock.remaining()
            return remaining is not None and remaining <= wait(state) + MIN_ATTEMPT_SECONDS

        return {
            "retry": retry_if_exception(is_retryable),
            "stop": stop,
            "wait": wait,
            "reraise": True,
        }

    def _attempt_timeout(self, clock: _Clock) -> float:
        remaining = clock.remaining()
        timeout = self.config.timeout if remaining is None else min(self.config.timeout, remaining)
        if timeout <= 0:
            raise ProviderError(
                f"deadline of {self.config.deadline:g}s exceeded", provider=self.provider, retryable=False
            )
        return timeout

    def _one(self, query: str, texts: Sequence[str], clock: _Clock, top_n: int | None = None) -> Scores:
        for attempt in Retrying(**self._retry_kwargs(clock)):
            with attempt:
                try:
                    timeout = self._attempt_timeout(clock)
                    if top_n is None:
                        return self._request(self.client(), query, texts, timeout)
                    return self._request(self.client(), query, texts, timeout, top_n=top_n)
                except ProviderError:
                    raise
                except Exception as exc:
                    raise self._classify(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aone(
        self, query: str, texts: Sequence[str], clock: _Clock, top_n: int | None = None
    ) -> Scores:
        async for attempt in AsyncRetrying(**self._retry_kwargs(clock)):
            with attempt:
                timeout = self._attempt_timeout(clock)
                try:
                    request = (
                        self._arequest(self.aclient(), query, texts, timeout)
                        if top_n is None
                        else self._arequest(self.aclient(), query, texts, timeout, top_n=top_n)
                    )
                    return await asyncio.wait_for(request, timeout + 1.0)
                except ProviderError:
                    raise
                except asyncio.TimeoutError as exc:
                    raise ProviderError(
                        f"no answer within {timeout:.1f}s", provider=self.provider, retryable=True
                    ) from exc
                except Exception as exc:
                    raise self._classify(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _retrying(self, call: Callable[[Any, float], T], clock: _Clock) -> T:
        """``call(client, timeout)`` under the retry policy: one request, any shape of result."""
        for attempt in Retrying(**self._retry_kwargs(clock)):
            with attempt:
                try:
                    return call(self.client(), self._attempt_timeout(clock))
                except ProviderError:
                    raise
                except Exception as exc:
                    raise self._classify(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _aretrying(self, call: Callable[[Any, float], Awaitable[T]], clock: _Clock) -> T:
        """Async ``_retrying``: ``await call(async_client, timeout)``, bounded by ``timeout + 1`` s."""
        async for attempt in AsyncRetrying(**self._retry_kwargs(clock)):
            with attempt:
                timeout = self._attempt_timeout(clock)
                try:
                    return await asyncio.wait_for(call(self.aclient(), timeout), timeout + 1.0)
                except ProviderError:
                    raise
                except asyncio.TimeoutError as exc:
                    raise ProviderError(
                        f"no answer within {timeout:.1f}s", provider=self.provider, retryable=True
                    ) from exc
                except Exception as exc:
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
        unscored: list[int] = []
        for start, part in parts:
            values.extend(part)
            flags.update({start + i: msg for i, msg in part.flags.items()})
            unscored.extend(start + i for i in part.unscored)
        return Scores(values, usage=merge_usage(*(p.usage for _, p in parts)), flags=flags, unscored=unscored)

    def _top_n(self, top_n: int | None, n: int) -> int | None:
        """``top_n`` to send, or None: only if the API takes it, one request suffices and it cuts the list."""
        if top_n is None or not self.sends_top_n or n > self.config.documents_per_request:
            return None
        return top_n if top_n < n else None

    def _call_score(self, query: str, texts: list[str], top_n: int | None = None) -> list[float]:
        return self.score(query, texts, top_n=top_n)

    async def _acall_score(self, query: str, texts: list[str], top_n: int | None = None) -> list[float]:
        return await self.ascore(query, texts, top_n=top_n)

    def score(self, query: str, texts: Sequence[str], *, top_n: int | None = None) -> Scores:
        """Scores for ``texts``: chunked, concurrent, retried, bounded by the deadline.

        With ``top_n`` (and a list that fits one request), the API is asked for the best
        ``top_n`` only; the others come back in ``Scores.unscored`` with a placeholder.
        """
        if not texts:
            return Scores([])
        clock = _Clock(self.config.deadline)
        chunks = self._chunks(texts)
        if len(chunks) == 1:
            return self._one(query, texts, clock, self._top_n(top_n, len(texts)))
        pool = ThreadPoolExecutor(max_workers=min(len(chunks), self.config.max_concurrency))
        try:
            parts = list(pool.map(lambda c: (c[0], self._one(query, c[1], clock)), chunks))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # one chunk failed: do not start the rest
        return self._merge(parts)

    async def ascore(self, query: str, texts: Sequence[str], *, top_n: int | None = None) -> Scores:
        """Async ``score`` on the async SDK client; chunks run concurrently under ``max_concurrency``.

        When one chunk fails for good, the chunks still in flight are cancelled.
        """
        clock = _Clock(self.config.deadline)
        chunks = self._chunks(texts)
        if len(chunks) == 1:
            return await self._aone(query, texts, clock, self._top_n(top_n, len(texts)))
        limit = asyncio.Semaphore(self.config.max_concurrency)

        async def run(start: int, chunk: Sequence[str]) -> tuple[int, Scores]:
            async with limit:
                return start, await self._aone(query, chunk, clock)

        return self._merge(await gather_or_cancel(*(run(s, c) for s, c in chunks)))
