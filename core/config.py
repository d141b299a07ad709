"""Pydantic configuration shared by every reranker."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError

OnError = Literal["fail_open", "raise"]


class RerankerConfig(BaseModel):
    """Fields every provider understands; providers subclass this with their own."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    model: str | None = Field(default=None, description="Model name or local path.")
    top_k: int | None = Field(default=None, ge=0, description="Keep at most this many documents.")
    score_threshold: float | None = Field(
        default=None, description="Drop documents whose rerank_score is below this value."
    )
    normalize: bool = Field(
        default=True, description="Map scores to [0, 1] with the provider's documented rule."
    )
    text_key: str | None = Field(
        default=None, description="Dict key holding the text; default: memory, text, content, str(doc)."
    )
    on_error: OnError = Field(
        default="fail_open",
        description="fail_open keeps the input order and flags each item; raise raises ProviderError.",
    )
    max_concurrency: int = Field(
        default=4, ge=1, description="Queries reranked at once by rerank_many / arerank_many."
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = set(cls.model_fields)
            unknown = sorted(str(k) for k in data if k not in allowed)
            if unknown:
                raise ValueError(
                    f"unknown config key(s) {unknown} for {cls.__name__}; allowed keys: {sorted(allowed)}"
                )
        return data

    @classmethod
    def build(cls, data: RerankerConfig | dict[str, Any] | None = None, **overrides: Any) -> RerankerConfig:
        """Validate ``data`` (a dict, a config or None) plus keyword overrides into this class."""
        if isinstance(data, cls) and not overrides:
            return data
        if isinstance(data, RerankerConfig):
            raw: dict[str, Any] = data.model_dump(exclude_unset=True)
        elif data is None:
            raw = {}
        elif isinstance(data, dict):
            raw = dict(data)
        else:
            raise ConfigError(f"config must be a dict or {cls.__name__}, got {type(data).__name__}")
        raw.update(overrides)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"invalid {cls.__name__}: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
