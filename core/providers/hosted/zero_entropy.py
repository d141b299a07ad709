"""``zero_entropy``: ZeroEntropy's hosted rerank API (``POST {base}/models/rerank``) via the official SDK."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from core.config import RerankerConfig
from core.errors import ProviderError
from core.normalize import ScoreScale
from core.providers.hosted.config import ApiRerankerConfig
from core.providers.hosted.rerank_api import RerankApiReranker
from core.providers.hosted.responses import error_message, status_error, usage_counts

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


class ZeroEntropyReranker(RerankApiReranker):
    """ZeroEntropy rerank with ``ZeroEntropy`` / ``AsyncZeroEntropy``; scores are relevance probabilities.

    Usage on the result: ``{"total_tokens": billed tokens, "total_bytes": rate-limited bytes}``.
    """

    provider: ClassVar[str] = "zero_entropy"
    config_class: ClassVar[type[RerankerConfig]] = ZeroEntropyRerankerConfig
    score_scale: ClassVar[ScoreScale] = "probability"
    sdk: ClassVar[str] = "zeroentropy"
    extra: ClassVar[str] = "zeroentropy"
    #: The SDK's name, then Mem0's.
    key_env_vars: ClassVar[tuple[str, ...]] = ("ZEROENTROPY_API_KEY", "ZERO_ENTROPY_API_KEY")
    url_env_var: ClassVar[str | None] = "ZEROENTROPY_BASE_URL"
    default_base_url: ClassVar[str | None] = "https://api.zeroentropy.dev/v1"
    client_classes: ClassVar[tuple[str, str]] = ("ZeroEntropy", "AsyncZeroEntropy")
    rerank_call: ClassVar[str] = "models.rerank"
    config: ZeroEntropyRerankerConfig

    def _params(self, timeout: float) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout": timeout}
        if self.config.latency is not None:
            params["latency"] = self.config.latency
        return params

    def _usage(self, response: Any) -> dict[str, float]:
        tokens, size = getattr(response, "total_tokens", None), getattr(response, "total_bytes", None)
        return usage_counts(total_tokens=tokens, total_bytes=size)

    def _classify(self, exc: Exception) -> ProviderError:
        zeroentropy = self._sdk()
        if isinstance(exc, zeroentropy.APIStatusError):
            message = error_message(exc.body, default=exc.message)
            return status_error(self.provider, exc.status_code, message, exc.response.headers)
        if isinstance(exc, zeroentropy.APITimeoutError):
            return ProviderError("request timed out", provider=self.provider, retryable=True)
        if isinstance(exc, zeroentropy.APIConnectionError):  # refused, reset, closed mid-answer
            cause = exc.__cause__ or exc
            return ProviderError(
                f"connection failed: {type(cause).__name__}: {cause}", provider=self.provider, retryable=True
            )
        if isinstance(exc, (json.JSONDecodeError, zeroentropy.APIResponseValidationError)):
            return ProviderError(f"malformed response: {exc}", provider=self.provider)
        return ProviderError(f"unexpected response: {type(exc).__name__}: {exc}", provider=self.provider)
