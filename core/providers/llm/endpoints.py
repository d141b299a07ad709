"""The chat endpoint an LLM reranker calls: resolved from its config and Mem0's nested ``llm`` override."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from core.deps import require
from core.errors import ConfigError
from core.providers.llm.endpoint_table import (
    AZURE_API_VERSION,
    AZURE_FIELDS,
    ENDPOINTS,
    IGNORED_LLM_FIELDS,
    PLACEHOLDER_KEY,
    canonical_provider,
)

logger = logging.getLogger("rerank_layer")

#: Keys of the nested ``llm.config`` that override the top-level settings.
_OVERRIDE_FIELDS = frozenset({"model", "api_key", "temperature", "max_tokens", "base_url", "azure_kwargs"})
#: Mem0's per-provider URL fields (``ollama_base_url``...) -> their provider.
_URL_FIELDS = {spec.url_field: name for name, spec in ENDPOINTS.items() if spec.url_field}


def check_llm_override(llm: Mapping[str, Any], default_provider: str) -> None:
    """Validate Mem0's ``llm: {"provider", "config"}`` shape; raise ValueError naming the key."""
    unknown = sorted(str(k) for k in llm if k not in ("provider", "config"))
    if unknown:
        raise ValueError(f"llm: unknown key(s) {unknown}; allowed: ['config', 'provider']")
    provider = canonical_provider(llm.get("provider", default_provider), "llm.provider")
    config = llm.get("config") or {}
    if not isinstance(config, Mapping):
        raise ValueError(f"llm.config must be a dict, got {type(config).__name__}")
    for key in config:
        if key in _URL_FIELDS and _URL_FIELDS[key] != provider:
            raise ValueError(f"llm.config.{key} is for provider {_URL_FIELDS[key]!r}, not {provider!r}")
        allowed = key in _OVERRIDE_FIELDS or key in _URL_FIELDS or key in IGNORED_LLM_FIELDS
        if not allowed and not (provider == "azure_openai" and key in AZURE_FIELDS):
            raise ValueError(f"llm.config: unknown key {key!r} for provider {provider!r}")
    azure = config.get("azure_kwargs") or {}
    if not isinstance(azure, Mapping):
        raise ValueError("llm.config.azure_kwargs must be a dict")
    bad = sorted(str(k) for k in azure if k not in (*AZURE_FIELDS, "api_key"))
    if bad:
        raise ValueError(f"llm.config.azure_kwargs: unknown key(s) {bad}")


@dataclass(frozen=True)
class LLMEndpoint:
    """A resolved chat endpoint: where to send, with which key, model and sampling settings."""

    provider: str
    model: str
    base_url: str | None
    api_key: str = field(repr=False)
    temperature: float
    max_tokens: int
    azure: dict[str, Any] = field(default_factory=dict)

    def client_kwargs(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments for the SDK client: SDK retries off (the reranker retries)."""
        kwargs: dict[str, Any] = {"api_key": self.api_key, "timeout": timeout, "max_retries": 0}
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        kwargs.update(self.azure)
        return kwargs

    def make_client(self, asynchronous: bool, timeout: float, http_client: Any = None) -> Any:
        """A new ``openai`` client (Azure's for ``azure_openai``), sync or async, over ``http_client``."""
        openai = require("openai", extra="llm", provider="llm_reranker")
        if self.provider == "azure_openai":
            cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        else:
            cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        extra = {} if http_client is None else {"http_client": http_client}
        return cls(**self.client_kwargs(timeout), **extra)


def _with_path(url: str, path: str) -> str:
    if path and not url.rstrip("/").endswith(path):
        return url.rstrip("/") + path
    return url


def _azure_settings(
    nested: Mapping[str, Any], azure_kwargs: Mapping[str, Any], url: str | None, env: Mapping[str, str]
) -> dict[str, Any]:
    """AzureOpenAI arguments: endpoint (or a full ``base_url``), deployment, API version, headers."""
    azure = {k: v for k in AZURE_FIELDS if (v := nested.get(k, azure_kwargs.get(k))) is not None}
    azure.setdefault("api_version", env.get("OPENAI_API_VERSION") or AZURE_API_VERSION)
    if url and "azure_endpoint" in azure:
        raise ConfigError("llm_reranker: set either azure_endpoint or base_url for azure_openai, not both")
    if not url and "azure_endpoint" not in azure:
        if not env.get("AZURE_OPENAI_ENDPOINT"):
            raise ConfigError(
                "llm_reranker: azure_openai needs llm.config.azure_endpoint (or azure_kwargs.azure_endpoint, "
                "a full base_url, or the AZURE_OPENAI_ENDPOINT env var)"
            )
        azure["azure_endpoint"] = env["AZURE_OPENAI_ENDPOINT"]
    return azure


def resolve_endpoint(
    settings: Mapping[str, Any], llm: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> LLMEndpoint:
    """Resolve the endpoint from top-level ``settings`` and Mem0's nested ``llm`` override.

    ``settings`` holds ``provider, model, api_key, base_url, temperature, max_tokens``;
    values in ``llm["config"]`` win over them (as in Mem0). The base URL comes from
    ``llm.config.base_url`` or the provider's Mem0 field (``ollama_base_url``...), else
    ``base_url``, else the provider's env var, else the table default. The key comes
    from the config, else the provider's env vars; a provider that needs one and has
    none raises ConfigError.
    """
    env = os.environ if env is None else env
    llm = llm or {}
    provider = canonical_provider(llm.get("provider", settings["provider"]))
    spec = ENDPOINTS[provider]
    nested: dict[str, Any] = dict(llm.get("config") or {})
    ignored = sorted(k for k in nested if k in IGNORED_LLM_FIELDS)
    if ignored:
        logger.info("llm_reranker: ignoring LLM settings that do not apply to scoring: %s", ignored)
    azure_kwargs = dict(nested.get("azure_kwargs") or {})
    merged = {k: v for k, v in settings.items() if v is not None}
    merged.update({k: v for k, v in nested.items() if v is not None and k in _OVERRIDE_FIELDS})
    api_key: Any = merged.get("api_key") or azure_kwargs.get("api_key")
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    api_key = api_key or next((env[v] for v in spec.key_env if env.get(v)), None)

    url = nested.get("base_url") or (nested.get(spec.url_field) if spec.url_field else None)
    url = url or merged.get("base_url")
    azure: dict[str, Any] = {}
    if provider == "azure_openai":
        azure = _azure_settings(nested, azure_kwargs, url, env)
    else:
        url = url or next((env[v] for v in spec.url_env if env.get(v)), None)
        url = _with_path(str(url), spec.api_path) if url else spec.base_url
    if not api_key:
        if spec.key_required and url == spec.base_url:
            names = " or ".join(spec.key_env)
            raise ConfigError(f"llm_reranker: no API key for provider {provider!r}; set api_key or {names}")
        api_key = PLACEHOLDER_KEY
    return LLMEndpoint(
        provider=provider,
        model=str(merged["model"]),
        base_url=url,
        api_key=str(api_key),
        temperature=float(merged["temperature"]),
        max_tokens=int(merged["max_tokens"]),
        azure=azure,
    )
