"""Provider registry and the Mem0-style factory ``create_reranker``."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from core.base import BaseReranker
from core.config import RerankerConfig
from core.errors import ConfigError
from core.normalize import SCALE_RULES
from core.secrets import MASKED_SECRET as MASKED_SECRET  # re-exported: how a dumped key reads
from core.secrets import masked
from core.specs import Spec, parse_spec

#: Entry-point group third-party packages use to add providers.
ENTRY_POINT_GROUP = "rerank_layer.providers"

#: Built-in providers (Mem0's keys), imported only when first used.
BUILTIN_PROVIDERS: dict[str, str] = {
    "cohere": "core.providers.hosted.cohere:CohereReranker",
    "zero_entropy": "core.providers.hosted.zero_entropy:ZeroEntropyReranker",
    "huggingface": "core.providers.huggingface:HuggingFaceReranker",
    "sentence_transformer": "core.providers.sentence_transformer:SentenceTransformerReranker",
    "llm_reranker": "core.providers.llm.reranker:LLMReranker",
    "cascade": "core.providers.cascade:CascadeReranker",
}

#: Other spellings users type for the same providers.
ALIASES: dict[str, str] = {
    "zeroentropy": "zero_entropy",
    "sentence_transformers": "sentence_transformer",
    "sentence-transformers": "sentence_transformer",
    "hf": "huggingface",
    "transformers": "huggingface",
    "llm": "llm_reranker",
}

#: Providers with a local route: ``"local": true`` in their config builds this class instead.
LOCAL_ROUTES: dict[str, str] = {
    "zero_entropy": "core.providers.zero_entropy_local:ZeroEntropyLocalReranker",
}

_registered: dict[str, type[BaseReranker] | str] = {}

SPEC_KEYS = ("provider", "config", "fallbacks")


def _key(name: str) -> str:
    """The registry key of a provider name: case-insensitive, surrounding spaces ignored."""
    return name.strip().lower()


def register_provider(name: str, reranker: type[BaseReranker] | str) -> None:
    """Register a provider class (or a ``"module:Class"`` path) under ``name`` (case-insensitive).

    A class is checked now (a path when first used): see :func:`check_provider_class`.
    """
    if not isinstance(reranker, str):
        check_provider_class(reranker, name)
    _registered[_key(name)] = reranker


def check_provider_class(cls: object, name: str) -> type[BaseReranker]:
    """``cls`` if it is a usable provider class, else a ConfigError saying what it lacks.

    It must subclass BaseReranker, have a RerankerConfig subclass as ``config_class``, and
    declare ``score_scale`` (or a ``scale`` property): the rule that maps its raw scores to
    ``rerank_score`` is never guessed.
    """
    if not (isinstance(cls, type) and issubclass(cls, BaseReranker)):
        raise ConfigError(f"provider {name!r}: {cls!r} is not a BaseReranker subclass")
    config_class = getattr(cls, "config_class", None)
    if not (isinstance(config_class, type) and issubclass(config_class, RerankerConfig)):
        raise ConfigError(
            f"provider {name!r}: {cls.__name__}.config_class must be a RerankerConfig subclass "
            f"(RerankerConfig itself if it has no settings of its own), got {config_class!r}"
        )
    own = [vars(k) for k in cls.__mro__ if issubclass(k, BaseReranker) and k is not BaseReranker]
    if not any("score_scale" in attrs or "scale" in attrs for attrs in own):
        raise ConfigError(
            f"provider {name!r}: {cls.__name__} must declare score_scale, the scale of its raw scores "
            f"({' | '.join(SCALE_RULES)}), so rerank_score is mapped to [0, 1] by the right rule"
        )
    if "scale" not in {k for attrs in own for k in attrs} and cls.score_scale not in SCALE_RULES:
        raise ConfigError(
            f"provider {name!r}: {cls.__name__}.score_scale is {cls.score_scale!r}; "
            f"use one of {list(SCALE_RULES)}"
        )
    return cls


def available_providers() -> list[str]:
    """Every provider name that ``create_reranker`` accepts (aliases excluded)."""
    names = set(BUILTIN_PROVIDERS) | set(_registered)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def _load(target: type[BaseReranker] | str, name: str) -> type[BaseReranker]:
    if not isinstance(target, str):
        return check_provider_class(target, name)
    module_name, _, attr = target.partition(":")
    return check_provider_class(getattr(importlib.import_module(module_name), attr), name)


def get_provider_class(name: str) -> type[BaseReranker]:
    """The reranker class registered as ``name`` (or one of its aliases)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"provider must be a non-empty string, got {name!r}")
    key = ALIASES.get(_key(name), _key(name))
    if key in _registered:
        return _load(_registered[key], name)
    if key in BUILTIN_PROVIDERS:
        return _load(BUILTIN_PROVIDERS[key], name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if _key(ep.name) == key:
            return _load(ep.load(), name)
    hint = ""
    if "/" in name:
        hint = f" (a model id? write 'huggingface:{name}' or 'sentence_transformer:{name}')"
    raise ConfigError(f"unknown reranker provider {name!r}{hint}; available: {available_providers()}")


def _provider_class(provider: Any, config: dict[str, Any]) -> tuple[type[BaseReranker], dict[str, Any]]:
    """The class ``provider`` resolves to for ``config``, and the config to build it with.

    ``"local": true`` selects the provider's local route (whose config holds the key);
    ``"local": false`` is dropped and the provider's own class is used.
    """
    cls = get_provider_class(provider)
    if "local" not in config:
        return cls, config
    key = ALIASES.get(_key(provider), _key(provider))
    if key not in LOCAL_ROUTES:
        raise ConfigError(
            f"provider {provider!r} has no local route; 'local' applies to {sorted(LOCAL_ROUTES)}"
        )
    if config["local"] is True:
        return _load(LOCAL_ROUTES[key], provider), config
    if config["local"] is not False:
        raise ConfigError(f"'local' must be true or false, got {config['local']!r}")
    return cls, {k: v for k, v in config.items() if k != "local"}


def create_reranker(spec: Spec | BaseReranker) -> BaseReranker:
    """Build a reranker from ``{"provider": ..., "config": {...}, "fallbacks": [...]}``.

    ``spec`` may also be a string, ``"provider"`` or ``"provider:model"``, or Mem0's
    ``{"reranker": {...}}`` wrapper. ``fallbacks`` is an optional list of specs tried in
    order when the provider fails. Provider names are case-insensitive.
    """
    if isinstance(spec, BaseReranker):
        return spec
    spec = parse_spec(spec)
    unknown = sorted(str(k) for k in spec if k not in SPEC_KEYS)
    if unknown:
        raise ConfigError(f"unknown reranker spec key(s) {unknown}; allowed keys: {list(SPEC_KEYS)}")
    if "provider" not in spec:
        raise ConfigError("reranker spec needs a 'provider' key")
    config = spec.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"'config' must be a dict, got {type(config).__name__}")
    fallbacks = spec.get("fallbacks") or []
    if not isinstance(fallbacks, list):
        raise ConfigError(f"'fallbacks' must be a list of specs, got {type(fallbacks).__name__}")
    cls, config = _provider_class(spec["provider"], config)
    return cls(config, fallbacks=[create_reranker(f) for f in fallbacks])


def reranker_spec(reranker: BaseReranker) -> dict[str, Any]:
    """The spec ``create_reranker`` rebuilds ``reranker`` from; every key masked (:mod:`core.secrets`).

    ``create_reranker`` drops a masked key, so a rebuilt API reranker reads its key from the
    provider's environment variables.
    """
    spec: dict[str, Any] = {
        "provider": reranker.provider,
        "config": masked(reranker.config.model_dump(mode="json", exclude_unset=True)),
    }
    if reranker.fallbacks:
        spec["fallbacks"] = [reranker_spec(f) for f in reranker.fallbacks]
    return spec
