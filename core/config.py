"""Pydantic configuration shared by every reranker.

Configs are frozen: a reranker sets up its model, clients and caches from its config once, so a
setting changed afterwards could not take effect. Assigning a field raises :class:`ConfigError`;
build a new reranker instead (``create_reranker(spec)``, or ``type(r)(r.config, model=...)``).
API keys follow :mod:`core.secrets`: SecretStr at any depth, masked in dumps, never pickled.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from core.secrets import SecretSafeModel, protect

OnError = Literal["fail_open", "raise"]


class RerankerConfig(SecretSafeModel):
    """Fields every provider understands; providers subclass this with their own."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, protected_namespaces=())

    model: str | None = Field(default=None, description="Model name or local path.")
    top_k: int | None = Field(
        default=None, ge=0, strict=True, description="Keep at most this many documents."
    )
    score_threshold: float | None = Field(
        default=None,
        strict=True,
        allow_inf_nan=False,
        description="Drop documents whose rerank_score is below this value (a finite number).",
    )
    normalize: bool = Field(
        default=True, description="Map scores to [0, 1] with the provider's documented rule."
    )
    text_key: str | None = Field(
        default=None,
        description="Dict key holding the text; default: memory, text, content, page_content, str(doc).",
    )
    on_error: OnError = Field(
        default="fail_open",
        description="fail_open keeps the input order and flags each item; raise raises ProviderError.",
    )
    max_concurrency: int = Field(
        default=4, ge=1, strict=True, description="Queries reranked at once by rerank_many / arerank_many."
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

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):  # a subclass's private state (pydantic PrivateAttr), not a setting
            super().__setattr__(name, value)
            return
        raise ConfigError(
            f"{type(self).__name__} is frozen: {name!r} cannot change after the reranker is built (its "
            f"model, clients and caches come from the config). Build a new reranker instead: "
            f"create_reranker(spec) or type(reranker)(reranker.config, {name}=...)"
        )

    @classmethod
    def build(cls, data: RerankerConfig | dict[str, Any] | None = None, **overrides: Any) -> RerankerConfig:
        """Validate ``data`` (a dict, a config or None) plus keyword overrides into this class.

        A ConfigError names each bad field; it chains no pydantic error (whose ``input`` would hold
        the raw values, API keys included).
        """
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
            return cls.model_validate(protect(raw))
        except ValidationError as exc:
            message = f"invalid {cls.__name__}: {_describe(exc)}"
        raise ConfigError(message)  # outside the except block: no __context__ to the ValidationError


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
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
