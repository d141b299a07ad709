"""``cohere``: Cohere's hosted rerank API v2 (``POST /v2/rerank``) through the official SDK."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from core.config import RerankerConfig
from core.deps import require
from core.errors import ProviderError
from core.normalize import ScoreScale
from core.providers.hosted.config import ApiRerankerConfig
from core.providers.hosted.rerank_api import RerankApiReranker
from core.providers.hosted.responses import error_message, status_error, usage_counts


class CohereRerankerConfig(ApiRerankerConfig):
    """Mem0's Cohere fields (model, api_key, top_k, return_documents, max_chunks_per_doc) plus v2's own."""

    model: str = Field(default="rerank-v3.5", min_length=1, description="Cohere rerank model.")
    base_url: str | None = Field(
        default=None, description="API root; None: CO_API_URL, else https://api.cohere.com."
    )
    max_tokens_per_doc: int | None = Field(
        default=None, ge=1, description="Truncate each document to this many tokens (API default 4096)."
    )
    return_documents: bool = Field(
        default=False,
        description="Mem0/v1 field, accepted for compatibility: v2 never echoes documents, and the "
        "output always holds copies of your documents whatever this says.",
    )
    max_chunks_per_doc: int | None = Field(
        default=None,
        description="Mem0/v1 field: v2 has no chunking; only None is accepted (use max_tokens_per_doc).",
    )

    @field_validator("max_chunks_per_doc")
    @classmethod
    def _no_v1_chunking(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError(
                "max_chunks_per_doc is a Cohere v1 rerank option; this provider calls the v2 API, which "
                "does not split documents into chunks but truncates each one at max_tokens_per_doc "
                "(default 4096 tokens). Remove max_chunks_per_doc and set max_tokens_per_doc instead."
            )
        return value


class CohereReranker(RerankApiReranker):
    """Cohere rerank v2 with ``ClientV2`` / ``AsyncClientV2``; scores are relevance probabilities in [0, 1].

    Usage on the result: ``{"search_units": billed units}``, summed over the requests.
    """

    provider: ClassVar[str] = "cohere"
    config_class: ClassVar[type[RerankerConfig]] = CohereRerankerConfig
    score_scale: ClassVar[ScoreScale] = "probability"
    sdk: ClassVar[str] = "cohere"
    extra: ClassVar[str] = "cohere"
    key_env_vars: ClassVar[tuple[str, ...]] = ("CO_API_KEY", "COHERE_API_KEY")
    url_env_var: ClassVar[str | None] = "CO_API_URL"
    default_base_url: ClassVar[str | None] = "https://api.cohere.com"
    client_classes: ClassVar[tuple[str, str]] = ("ClientV2", "AsyncClientV2")
    client_options: ClassVar[dict[str, Any]] = {"log_warning_experimental_features": False}
    http_client_option: ClassVar[str] = "httpx_client"
    rerank_call: ClassVar[str] = "rerank"
    config: CohereRerankerConfig

    def _params(self, timeout: float) -> dict[str, Any]:
        params: dict[str, Any] = {"request_options": {"timeout": timeout, "max_retries": 0}}
        if self.config.max_tokens_per_doc is not None:
            params["max_tokens_per_doc"] = self.config.max_tokens_per_doc
        return params

    def _usage(self, response: Any) -> dict[str, float]:
        billed = getattr(getattr(response, "meta", None), "billed_units", None)
        return usage_counts(search_units=getattr(billed, "search_units", None))

    def _classify(self, exc: Exception) -> ProviderError:
        cohere, httpx = self._sdk(), require("httpx", extra=self.extra, provider=self.provider)
        if isinstance(exc, cohere.core.api_error.ApiError):
            status = exc.status_code
            message = error_message(exc.body, default=type(exc).__name__)
            if status is None or 200 <= status < 300:  # the SDK could not read a 2xx body
                return ProviderError(f"malformed response: {message}", provider=self.provider, status=status)
            return status_error(self.provider, status, message, exc.headers)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(
                f"request timed out ({type(exc).__name__})", provider=self.provider, retryable=True
            )
        if isinstance(exc, httpx.TransportError):  # refused, reset, closed mid-answer
            return ProviderError(
                f"connection failed: {type(exc).__name__}: {exc}", provider=self.provider, retryable=True
            )
        return ProviderError(f"unexpected response: {type(exc).__name__}: {exc}", provider=self.provider)
