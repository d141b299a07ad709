"""Flat keyword arguments, in the shapes of the peers' rerankers, as one reranker.

The adapters take what langchain-cohere's ``CohereRerank(model=..., top_n=..., cohere_api_key=...)`` and
llama-index's ``SentenceTransformerRerank(model=..., top_n=..., device=...)`` /
``CohereRerank(model=..., api_key=..., top_n=...)`` take, as well as a spec:

- ``provider=`` names the provider; ``model=`` is its model, or, without ``provider``, a spec string
  (``"cohere:rerank-v3.5"``, ``"huggingface:/path"``) or a bare model id whose provider is plain from
  its form (:func:`spec_for_model`);
- every other keyword is a config field of that provider, checked against its config class;
  ``cohere_api_key`` is the config's ``api_key`` (and means ``provider="cohere"``);
- ``reranker=`` is a spec (dict or string, which the keywords then extend) or a built reranker.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.base import BaseReranker
from core.errors import ConfigError
from core.registry import ALIASES, available_providers, create_reranker, get_provider_class
from core.specs import DEFAULT_SPEC, parse_spec

#: Peers' names for config keys: name -> (config key, provider the name implies or None).
KEY_ALIASES: dict[str, tuple[str, str | None]] = {"cohere_api_key": ("api_key", "cohere")}

#: Model-id prefixes of the hosted rerank families (as LangChain's ``init_chat_model`` reads ``gpt-``).
MODEL_PREFIXES: dict[str, str] = {"rerank-": "cohere", "zerank-": "zero_entropy"}

#: Peers' keywords without an equivalent here, and what to write instead.
UNMAPPED: dict[str, str] = {
    "client": "pass api_key (and base_url) instead of a client object",
    "user_agent": "the SDK's client name is not configurable here",
    "choice_batch_size": "LLMRerank's batches: use provider='llm_reranker', mode='listwise', window_size",
    "model_kwargs": "pass the model's settings (device, max_length, ...) as keywords",
    "llm": "LLMRerank's llm object: use provider='llm_reranker', model=..., api_key=..., base_url=...",
    "choice_select_prompt": "use provider='llm_reranker' with scoring_prompt='... {query} ... {document}'",
}


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(key, key)


def _is_provider(name: str) -> bool:
    return _canonical(name) in {p.lower() for p in available_providers()}


def _names_provider(model: str) -> bool:
    """True for ``"provider:model"`` with a known provider."""
    prefix, sep, _ = model.strip().partition(":")
    return bool(sep) and _is_provider(prefix)


def spec_for_model(model: str) -> dict[str, Any]:
    """The spec of a ``model=`` given without ``provider=``.

    ``"provider:model"`` with a known provider is a spec string; ``"embedded"``, a local path or a
    Hub id (``org/name``) is a ``sentence_transformer`` model (a cross-encoder or a bi-encoder);
    ``rerank-*`` is Cohere's and ``zerank-*`` ZeroEntropy's. Anything else is an error naming ``model``.
    """
    text = model.strip()
    if _names_provider(text):
        return parse_spec(text)
    for start, provider in MODEL_PREFIXES.items():
        if text.lower().startswith(start):
            return {"provider": provider, "config": {"model": text}}
    if text.lower() == "embedded" or "/" in text or Path(text).exists():
        return {"provider": "sentence_transformer", "config": {"model": text}}
    raise ConfigError(
        f"model {model!r} names no provider: pass provider=... or write 'provider:{text}' "
        f"(e.g. 'cohere:{text}'); providers: {available_providers()}"
    )


def _resolve_aliases(settings: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """Config keys for the peers' names, and (keyword, provider) when one of them names the provider."""
    out: dict[str, Any] = {}
    implied: tuple[str, str] | None = None
    for key, value in settings.items():
        target, provider = KEY_ALIASES.get(key, (key, None))
        if target in out:
            raise ConfigError(f"{key!r} and {target!r} are the same setting; give one of them")
        out[target] = value
        if provider is not None:
            implied = (key, provider)
    return out, implied


def _spec(reranker: Any, provider: str | None, model: Any, implied: str | None) -> dict[str, Any]:
    if reranker is not None:
        if provider is not None:
            raise ConfigError("give either reranker= (a spec or a reranker) or provider=, not both")
        spec = parse_spec(reranker)
        if model is not None:
            spec["config"] = {**(spec.get("config") or {}), "model": model}
        return spec
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"model must be a model name or a spec string, got {type(model).__name__}")
    if provider is None and model is not None and (_names_provider(model) or implied is None):
        return spec_for_model(model)
    provider = provider or implied
    if provider is not None:
        return {"provider": provider, **({"config": {"model": model}} if model is not None else {})}
    return copy.deepcopy(DEFAULT_SPEC)


def _check_keys(
    spec: Mapping[str, Any], keys: Sequence[str], owner: str, owner_fields: Sequence[str]
) -> None:
    if not isinstance(spec.get("provider"), str):
        return  # create_reranker names what is wrong with the spec
    config_class = get_provider_class(spec["provider"]).config_class
    allowed = set(config_class.model_fields)
    unknown = sorted(k for k in keys if k not in allowed)
    if unknown:
        hints = "".join(f"; {k}: {UNMAPPED[k]}" for k in unknown if k in UNMAPPED)
        raise ConfigError(
            f"unknown keyword(s) {unknown} for {owner}: neither its own ({sorted(owner_fields)}) nor a "
            f"{config_class.__name__} key ({sorted(allowed)}){hints}"
        )


def reranker_from_keywords(
    reranker: Any = None,
    *,
    provider: str | None = None,
    model: Any = None,
    owner: str = "reranker",
    owner_fields: Sequence[str] = (),
    **settings: Any,
) -> BaseReranker:
    """The reranker that ``reranker=``, ``provider=``, ``model=`` and config keywords describe.

    With none of them it is :data:`core.specs.DEFAULT_SPEC` (the embedded model, offline).
    ``owner`` and ``owner_fields`` (the adapter and its own arguments) only word the errors.
    """
    if isinstance(reranker, BaseReranker):
        extra = sorted([*settings, *(["provider"] if provider else []), *(["model"] if model else [])])
        if extra:
            raise ConfigError(
                f"{owner}: reranker= is a built reranker; {extra} cannot change it (pass a spec instead)"
            )
        return reranker
    config, implied = _resolve_aliases(settings)
    spec = _spec(reranker, provider, model, implied[1] if implied else None)
    if implied is not None and _canonical(str(spec.get("provider"))) != implied[1]:
        raise ConfigError(
            f"{implied[0]!r} is a {implied[1]} setting, but the provider is {spec['provider']!r}"
        )
    _check_keys(spec, list(config), owner, owner_fields)
    if config:
        spec["config"] = {**(spec.get("config") or {}), **config}
    return create_reranker(spec)
