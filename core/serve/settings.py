"""Settings of the rerank server: where it listens, its limits, its batching and its optional key."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

#: How the serve wing names itself in a missing-dependency error.
SERVE = "serve"
#: Environment variable read for the bearer key when none is given.
API_KEY_ENV = "RERANK_LAYER_API_KEY"


def _key_from_env() -> SecretStr | None:
    value = os.environ.get(API_KEY_ENV, "").strip()  # a key read from a secret file ends in a newline
    return SecretStr(value) if value else None


class ServeSettings(BaseModel):
    """What ``rerank-layer serve`` runs with; every field has a command-line flag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0: every interface).")
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port (0: any free port).")
    served_model_name: str | None = Field(
        default=None,
        min_length=1,
        description="The name clients put in 'model'; default: the reranker's model name.",
    )
    api_key: SecretStr | None = Field(
        default_factory=_key_from_env,
        description=f"Bearer key every request but /health must send; default: ${API_KEY_ENV}, else none.",
    )
    max_documents: int = Field(default=1000, ge=1, description="Most documents in one request (else 413).")
    max_body_bytes: int = Field(default=8 * 2**20, ge=1, description="Largest request body (else 413).")
    max_queue: int = Field(
        default=128, ge=1, description="Most rerank requests in the server at once; beyond: 429."
    )
    max_wait_ms: float = Field(
        default=5.0,
        ge=0,
        description="Longest a request waits for others to be scored with it (only while more are arriving).",
    )
    max_batch_pairs: int = Field(
        default=256, ge=1, description="A group of requests scored together closes at this many pairs."
    )
    request_timeout: float = Field(default=60.0, gt=0, description="Seconds a request may take (else 504).")

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, key: SecretStr | None) -> SecretStr | None:
        """Surrounding whitespace dropped (clients' tokens are read stripped); a blank key is refused."""
        if key is None:
            return None
        value = key.get_secret_value().strip()
        if not value:
            raise ValueError("api_key must not be blank; leave it out to serve without a key")
        return SecretStr(value)
