"""``cohere``: Cohere's hosted rerank API v2 (``POST /v2/rerank``) through the official SDK."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator

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

PROVIDER = "cohere"
DEFAULT_BASE_URL = "https://api.cohere.com"
#: Where the key is looked up when the config has none, in this order.
KEY_ENV_VARS = ("CO_API_KEY", "COHERE_API_KEY")


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


class CohereReranker(ApiReranker):
    """Cohere rerank v2 with ``ClientV2`` / ``AsyncClientV2``; scores are relevance probabilities in [0, 1].

    Usage on the result: ``{"search_units": billed units}``, summed over the requests.
    """

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = CohereRerankerConfig
    score_scale: ClassVar[ScoreScale] = "probability"
    sends_top_n: ClassVar[bool] = True
    config: CohereRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require("cohere", extra="cohere", provider=PROVIDER)  # fail fast, and import before any deadline runs
        self._key = self.api_key(*KEY_ENV_VARS)
        if not self._key:
            raise ConfigError(
                "the cohere reranker needs an API key: set config api_key or the CO_API_KEY "
                "(or COHERE_API_KEY) environment variable"
            )

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self.config.base_url or os.environ.get("CO_API_URL") or DEFAULT_BASE_URL

    def _make_client(self, asynchronous: bool) -> Any:
        cohere = require("cohere", extra="cohere", provider=PROVIDER)
        cls = cohere.AsyncClientV2 if asynchronous else cohere.ClientV2
        return cls(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.config.timeout,
            max_retries=0,
            log_warning_experimental_features=False,
        )

    def _params(self, query: str, texts: Sequence[str], timeout: float, top_n: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.config.model,
            "query": query,
            "documents": list(texts),
            "request_options": {"timeout": timeout, "max_retries": 0},
        }
        if top_n is not None:
            params["top_n"] = top_n
        if self.config.max_tokens_per_doc is not None:
            params["max_tokens_per_doc"] = self.config.max_tokens_per_doc
        return params

    @staticmethod
    def _scores(response: Any, n: int, top_n: int | None) -> Scores:
        billed = getattr(getattr(response, "meta", None), "billed_units", None)
        units = getattr(billed, "search_units", None)
        usage = {"search_units": float(units)} if isinstance(units, (int, float)) else {}
        results = getattr(response, "results", None)
        return scores_from_results(results, n, provider=PROVIDER, top_n=top_n, usage=usage)

    def _request(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        response = client.rerank(**self._params(query, texts, timeout, top_n))
        return self._scores(response, len(texts), top_n)

    async def _arequest(
        self, client: Any, query: str, texts: Sequence[str], timeout: float, top_n: int | None = None
    ) -> Scores:
        response = await client.rerank(**self._params(query, texts, timeout, top_n))
        return self._scores(response, len(texts), top_n)

    def _classify(self, exc: Exception) -> ProviderError:
        cohere = require("cohere", extra="cohere", provider=PROVIDER)
        httpx = require("httpx", extra="cohere", provider=PROVIDER)
        if isinstance(exc, cohere.core.api_error.ApiError):
            status = exc.status_code
            message = error_message(exc.body, default=type(exc).__name__)
            if status is None or 200 <= status < 300:  # the SDK could not read a 2xx body
                return ProviderError(f"malformed response: {message}", provider=PROVIDER, status=status)
            return status_error(PROVIDER, status, message, exc.headers)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderError(
                f"request timed out ({type(exc).__name__})", provider=PROVIDER, retryable=True
            )
        if isinstance(exc, httpx.TransportError):  # refused, reset, closed mid-answer
            return ProviderError(
                f"connection failed: {type(exc).__name__}: {exc}", provider=PROVIDER, retryable=True
            )
        return ProviderError(f"unexpected response: {type(exc).__name__}: {exc}", provider=PROVIDER)
