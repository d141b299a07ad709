"""Pydantic configuration shared by every reranker."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

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
            data = _resolve_aliases(cls, data)
            allowed = set(cls.model_fields)
            unknown = sorted(str(k) for k in data if k not in allowed and k not in _aliases(cls))
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


def _aliases(cls: type[BaseModel]) -> dict[str, str]:
    """Other names a field accepts (``validation_alias=AliasChoices(...)``): name -> field."""
    names: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            names.update({c: name for c in info.validation_alias.choices if isinstance(c, str) and c != name})
    return names


def _resolve_aliases(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with one name per field. An alias set to None is dropped when its field takes no None
    (``max_workers: None`` reads as "not set"); names of one field must agree, and one is kept."""
    aliases = _aliases(cls)
    given: dict[str, list[str]] = {}
    for key, value in data.items():
        field = aliases.get(key)
        if (
            field is not None
            and value is None
            and type(None) not in get_args(cls.model_fields[field].annotation)
        ):
            continue
        given.setdefault(field or key, []).append(key)
    for field, keys in given.items():
        if len({repr(data[k]) for k in keys}) > 1:
            raise ValueError(f"{' and '.join(sorted(keys))} name one setting ({field}); set only one")
    return {keys[0]: data[keys[0]] for keys in given.values()}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
