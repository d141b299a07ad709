"""Config fields every hosted provider shares: key, API root, timeouts, retries, request size, concurrency."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.config import RerankerConfig


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
    max_concurrency: int = Field(
        default=4,
        ge=1,
        strict=True,
        description="Requests in flight at once for the whole call: every chunk, and every query of "
        "rerank_many / arerank_many (which run up to this many queries at once).",
    )
