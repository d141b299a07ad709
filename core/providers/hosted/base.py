"""The hosted base: one SDK, its clients (sync, and async per event loop), the API key and the retries.

A hosted provider declares its SDK and where its key and API root come from, and says how to
classify the SDK's errors; ``retry_policy()`` then runs its requests under one policy, sync or async.
Every SDK client sends through a clocked HTTP client (``transport``): an attempt's network
operations end when its time does. Async clients are owned per event loop and closed with it
(``loop_clients``).
"""

from __future__ import annotations

import os
import threading
import weakref
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from core.base import BaseReranker
from core.concurrency import request_limit
from core.config import RerankerConfig
from core.deps import require
from core.errors import ConfigError, ProviderError
from core.providers.hosted.config import ApiRerankerConfig
from core.providers.hosted.loop_clients import LoopClients
from core.providers.hosted.responses import (
    RETRYABLE_STATUSES,
    error_message,
    retry_after_seconds,
    scores_from_results,
    status_error,
    usage_counts,
)
from core.providers.hosted.retry import RetryPolicy, is_retryable
from core.providers.hosted.transport import clocked_http_client

__all__ = [
    "RETRYABLE_STATUSES",
    "ApiReranker",
    "ApiRerankerConfig",
    "error_message",
    "is_retryable",
    "retry_after_seconds",
    "scores_from_results",
    "status_error",
    "usage_counts",
]


class ApiReranker(BaseReranker):
    """A reranker behind a network API: the SDK, its clients, the key lookup and the retry policy.

    Subclasses set ``sdk`` / ``extra``, the key's environment variables (or resolve the key
    themselves), the API root and the SDK's client classes, and implement ``_classify``.
    """

    io_bound: ClassVar[bool] = True
    config_class: ClassVar[type[RerankerConfig]] = ApiRerankerConfig
    #: The SDK's import name, and the extra that installs it.
    sdk: ClassVar[str]
    extra: ClassVar[str]
    #: Where the key is looked up when the config has none, in order; empty when the subclass resolves it.
    key_env_vars: ClassVar[tuple[str, ...]] = ()
    #: The API root: config ``base_url``, else this environment variable, else the default.
    url_env_var: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    #: Names of the SDK's sync and async client classes, and extra arguments they take.
    client_classes: ClassVar[tuple[str, str]] = ("", "")
    client_options: ClassVar[dict[str, Any]] = {}
    config: ApiRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._sdk()  # fail fast, and import before any deadline runs
        self._key = self.api_key() if self.key_env_vars else None
        self._lock = threading.Lock()
        self._sync_client: Any = None
        self._async_clients: LoopClients[Any] = LoopClients(self._new_async_client)

    @abstractmethod
    def _classify(self, exc: Exception) -> ProviderError:
        """Turn an SDK or transport error into a ProviderError (status, retryable, retry_after)."""

    def _sdk(self) -> Any:
        return require(self.sdk, extra=self.extra, provider=self.provider)

    # --- key, API root, clients ----------------------------------------------------------
    def api_key(self) -> str:
        """The configured key, else the first of ``key_env_vars`` that is set; ConfigError if none is."""
        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        key = next((os.environ[v] for v in self.key_env_vars if os.environ.get(v)), None)
        if not key:
            first, *others = self.key_env_vars
            also = f" (or {' or '.join(others)})" if others else ""
            raise ConfigError(
                f"the {self.provider} reranker needs an API key: set config api_key or the {first}{also} "
                "environment variable"
            )
        return key

    @property
    def base_url(self) -> str | None:
        """The API root requests go to."""
        from_env = os.environ.get(self.url_env_var) if self.url_env_var else None
        return self.config.base_url or from_env or self.default_base_url

    #: The SDK client's keyword for a custom httpx client.
    http_client_option: ClassVar[str] = "http_client"

    def _make_client(self, asynchronous: bool, http_client: Any) -> Any:
        """A new SDK client (async if asked) over ``http_client``, with the SDK's own retries off."""
        cls = getattr(self._sdk(), self.client_classes[asynchronous])
        return cls(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.config.timeout,
            max_retries=0,
            **{self.http_client_option: http_client},
            **self.client_options,
        )

    def _http_client(self, asynchronous: bool) -> Any:
        """A clocked httpx client of the SDK's flavour, pooling up to ``max_concurrency`` connections."""
        cfg = self.config
        return clocked_http_client(self._sdk(), asynchronous, cfg.timeout, cfg.max_concurrency)

    def client(self) -> Any:
        """The sync SDK client, created on first use; its connections close when the reranker goes."""
        with self._lock:
            if self._sync_client is None:
                http_client = self._http_client(False)
                self._sync_client = self._make_client(False, http_client)
                weakref.finalize(self, http_client.close)
            return self._sync_client

    async def aclient(self) -> Any:
        """The async SDK client of the running event loop: made on first use there, closed with the loop."""
        return await self._async_clients.get()

    def _new_async_client(self) -> tuple[Any, Callable[[], Awaitable[None]]]:
        http_client = self._http_client(True)
        return self._make_client(True, http_client), http_client.aclose

    def warmup(self) -> None:
        """Create the sync SDK client now, so the first call spends no deadline on setup."""
        self.client()

    def retry_policy(self) -> RetryPolicy:
        """The retries, timeouts and deadline of one call (the deadline starts now), and its request slots.

        The slots are shared by every request of the call, and by every query of a ``rerank_many``.
        """
        limit = request_limit(self, self.config.max_concurrency)
        return RetryPolicy(self.provider, self.config, self._classify, limit)
