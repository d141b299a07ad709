"""``zero_entropy``: ZeroEntropy's hosted rerank API (``POST {base}/models/rerank``) via the official SDK."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from core.config import RerankerConfig
from core.deps import require
from core.errors import ConfigError, ProviderError
from core.normalize import ScoreScale
from core.providers.hosted.base import (
    ApiReranker,
    ApiRerankerConfig,
    error_message,
    scores_from_results,
    status_error,
)
from core.results import Scores

PROVIDER = "zero_entropy"
DEFAULT_BASE_URL = "https://api.zeroentropy.dev/v1"
#: Where the key is looked up when the config has none: the SDK's name, then Mem0's.
KEY_ENV_VARS = ("ZEROENTROPY_API_KEY", "ZERO_ENTROPY_API_KEY")
#: Models the API documents; other names are passed through unchanged.
KNOWN_MODELS = ("zerank-2", "zerank-1", "zerank-1-small")


class ZeroEntropyRerankerConfig(ApiRerankerConfig):
    """Mem0's ZeroEntropy fields (model, api_key, top_k) plus the latency mode."""

    model: str = Field(
        default="zerank-1",
        min_length=1,
        description="zerank-2 (newest), zerank-1 (Mem0's default) or zerank-1-small.",
    )
    base_url: str | None = Field(
        default=None,
        description="API root; None: ZEROENTROPY_BASE_URL, else https://api.zeroentropy.dev/v1.",
    )
    latency: Literal["fast", "slow"] | None = Field(
        default=None,
        description="fast: sub-second or 429; slow: higher rate limits; None: fast, slow when throttled.",
    )


class ZeroEntropyReranker(ApiReranker):
    """ZeroEntropy rerank with ``ZeroEntropy`` / ``AsyncZeroEntropy``; scores are relevance probabilities.

    Usage on the result: ``{"total_tokens": billed tokens, "total_bytes": rate-limited bytes}``.
    """

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = ZeroEntropyRerankerConfig
    score_scale: ClassVar[ScoreScale] = "probability"
    sends_top_n: ClassVar[bool] = True
    config: ZeroEntropyRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require(
            "zeroentropy", extra="zeroentropy", provider=PROVIDER
        )  # fail fast, and import before any deadline runs
        self._key = self.api_key(*KEY_ENV_VARS)
        if not self._key:
            raise ConfigError(
                "the zero_entropy reranker needs an API key: set config api_key or the "
                "ZEROENTROPY_API_KEY (or ZERO_ENTROPY_API_KEY) environment variable"
            )

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self.config.base_url or os.environ.get("ZEROENTROPY_BASE_URL") or DEFAULT_BASE_URL

    def _make_client(self, asynchronous: bool) -> Any:
        zeroentropy = require("zeroentropy", extra="zeroentropy", provider=PROVIDER)
        cls = zeroentropy.AsyncZeroEntropy if asynchronous else zeroentropy.ZeroEntropy
        return cls(api_key=self._key, base_url=self.base_url, timeout=self.config.timeout, max_retries=0)

    def _params(self, query: str, texts: Sequence[str], timeout: float, top_n: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.config.model,
            "query": query,
            "documents": list(texts),
            "timeout": timeout,
        }
        if self.config.latency is not None:
            params["latency"] = self.config.latency
        if top_n is not None:
            params["top_n"] = top_n
        return params

    @staticmethod
    def _scores(response: Any, n: int, top_n: int | None) -> Scores:
        usage = {
            key: float(value)
            for key in ("total_tokens", "total_bytes")
            if isinstance(value := getattr(response, key, None), (int, float)) and not isinstance(value, bool)
        }
        results = getattr(response, "results", None)
        return scores_from_results(results, n, provider=PROVIDER, top_n=top_n, usage=usage)

    def _request(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        response = client.models.rerank(**self._params(query, texts, timeout, top_n))
        return self._scores(response, len(texts), top_n)

    async def _arequest(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        response = await client.models.rerank(**self._params(query, texts, timeout, top_n))
        return self._scores(response, len(texts), top_n)

    def _classify(self, exc: Exception) -> ProviderError:
        zeroentropy = require("zeroentropy", extra="zeroentropy", provider=PROVIDER)
        if isinstance(exc, zeroentropy.APIStatusError):
            message = error_message(exc.body, default=exc.message)
            return status_error(PROVIDER, exc.status_code, message, exc.response.headers)
        if isinstance(exc, zeroentropy.APITimeoutError):
            return ProviderError("request timed out", provider=PROVIDER, retryable=True)
        if isinstance(exc, zeroentropy.APIConnectionError):  # refused, reset, closed mid-answer
            cause = exc.__cause__ or exc
            return ProviderError(
                f"connection failed: {type(cause).__name__}: {cause}", provider=PROVIDER, retryable=True
            )
        if isinstance(exc, (json.JSONDecodeError, zeroentropy.APIResponseValidationError)):
            return ProviderError(f"malformed response: {exc}", provider=PROVIDER)
        return ProviderError(f"unexpected response: {type(exc).__name__}: {exc}", provider=PROVIDER)
