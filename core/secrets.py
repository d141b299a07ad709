"""The one rule for API keys, at any depth of a config: stored as SecretStr, masked in dumps, never pickled.

A secret is a value under a key named exactly ``api_key`` (:data:`SECRET_FIELDS`), or any ``SecretStr``.
No other key is touched, whatever its name (``max_tokens`` is not a secret). The rule reaches into
nested dicts and lists: cascade stages, their fallbacks, Mem0's nested ``llm.config`` and its
``azure_kwargs``.

- :func:`protect` stores every secret as a ``SecretStr`` (so ``str``, ``repr`` and pydantic's JSON dump
  show ``**********``) and drops a masked placeholder (a dumped spec: the key then comes from the env var).
- :func:`masked` is a JSON-ready copy with every secret replaced by :data:`MASKED_SECRET`.
- :func:`without_secrets` is a copy with every secret removed: what a pickled config carries.

:class:`SecretSafeModel` applies the rule to a pydantic model (every reranker config is one): its input is
protected before validation, so neither the stored values nor a ``ValidationError``'s ``input`` hold a key
in clear, and its pickle leaves every secret out. A config rebuilt from a pickle (another process, a Ray
actor) or from a dumped spec therefore has no key: the reranker reads the provider's environment variable
(``CO_API_KEY``, ``ZEROENTROPY_API_KEY``, ``OPENAI_API_KEY``...), which must be set where it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, SecretStr, model_validator

#: Keys whose values are secrets, matched exactly (never as a substring).
SECRET_FIELDS = frozenset({"api_key"})

#: How a secret is written in a dump (pydantic's SecretStr mask); ``create_reranker`` drops it.
MASKED_SECRET = "**********"


def is_secret(key: object, value: object) -> bool:
    """True for a ``SecretStr``, or a string under a key named exactly ``api_key``."""
    return isinstance(value, SecretStr) or (key in SECRET_FIELDS and isinstance(value, str))


def protect(data: Any) -> Any:
    """A copy of ``data`` with every ``api_key`` string a ``SecretStr``, at any depth; masked ones dropped."""
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            if key in SECRET_FIELDS and value == MASKED_SECRET:
                continue  # a dumped spec: the rebuilt reranker reads the provider's env var instead
            out[key] = SecretStr(value) if key in SECRET_FIELDS and isinstance(value, str) else protect(value)
        return out
    if isinstance(data, (list, tuple)):
        return [protect(item) for item in data]
    return data


def masked(data: Any) -> Any:
    """A copy of ``data`` with every secret (SecretStr or ``api_key`` string) replaced by ``**********``."""
    if isinstance(data, SecretStr):
        return MASKED_SECRET
    if isinstance(data, Mapping):
        return {k: MASKED_SECRET if is_secret(k, v) else masked(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [masked(item) for item in data]
    return data


def without_secrets(data: Any) -> Any:
    """A copy of ``data`` with every secret left out (dict entries removed), at any depth."""
    if isinstance(data, Mapping):
        return {k: without_secrets(v) for k, v in data.items() if not is_secret(k, v)}
    if isinstance(data, (list, tuple)):
        return [without_secrets(item) for item in data]
    return data


class SecretSafeModel(BaseModel):
    """A pydantic model under the rule: secrets are SecretStr from the start, and no pickle carries one."""

    def __init__(self, /, **data: Any) -> None:
        super().__init__(**protect(data))

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a subclass that declares a secret field as anything but SecretStr."""
        super().__pydantic_init_subclass__(**kwargs)
        for name in sorted(SECRET_FIELDS & set(cls.model_fields)):
            annotation = cls.model_fields[name].annotation
            if annotation is not SecretStr and SecretStr not in get_args(annotation):
                raise TypeError(
                    f"{cls.__name__}.{name} must be declared as SecretStr (or SecretStr | None), "
                    f"not {annotation}: API keys are stored as SecretStr so that no dump shows them"
                )

    @model_validator(mode="before")
    @classmethod
    def _protect_secrets(cls, data: Any) -> Any:
        return protect(data)

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled state without secrets: a SecretStr field becomes None (unset), nested keys are left out."""
        state = super().__getstate__()
        values: dict[str, Any] = state["__dict__"]
        dropped = {name for name, value in values.items() if isinstance(value, SecretStr)}
        state["__dict__"] = {
            name: None if name in dropped else without_secrets(value) for name, value in values.items()
        }
        state["__pydantic_fields_set__"] = set(state["__pydantic_fields_set__"]) - dropped
        return state
