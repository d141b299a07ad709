"""The OpenAI-compatible LLM providers: where each one's API lives and where its key comes from.

Every provider here speaks the OpenAI chat format, so one ``openai`` SDK client serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointSpec:
    """Where one provider's OpenAI-compatible API lives and how it authenticates."""

    base_url: str | None
    key_env: tuple[str, ...] = ()
    key_required: bool = True
    url_field: str | None = None
    url_env: tuple[str, ...] = ()
    api_path: str = ""  # appended to a configured URL that lacks it (Ollama's "/v1")


#: LLM providers reachable through the ``openai`` SDK (Mem0's provider names).
ENDPOINTS: dict[str, EndpointSpec] = {
    "openai": EndpointSpec(
        "https://api.openai.com/v1", ("OPENAI_API_KEY",), True, "openai_base_url", ("OPENAI_BASE_URL",)
    ),
    "azure_openai": EndpointSpec(None, ("AZURE_OPENAI_API_KEY",), True, None, ("AZURE_OPENAI_ENDPOINT",)),
    "ollama": EndpointSpec(
        "http://localhost:11434/v1", (), False, "ollama_base_url", ("OLLAMA_BASE_URL",), "/v1"
    ),
    "vllm": EndpointSpec(
        "http://localhost:8000/v1", ("VLLM_API_KEY",), False, "vllm_base_url", ("VLLM_BASE_URL",), "/v1"
    ),
    "lmstudio": EndpointSpec(
        "http://localhost:1234/v1", ("LMSTUDIO_API_KEY",), False, "lmstudio_base_url", (), "/v1"
    ),
    "groq": EndpointSpec("https://api.groq.com/openai/v1", ("GROQ_API_KEY",), True, "groq_base_url"),
    "together": EndpointSpec("https://api.together.xyz/v1", ("TOGETHER_API_KEY",), True, "together_base_url"),
    "deepseek": EndpointSpec("https://api.deepseek.com", ("DEEPSEEK_API_KEY",), True, "deepseek_base_url"),
    "anthropic": EndpointSpec(
        "https://api.anthropic.com/v1/", ("ANTHROPIC_API_KEY",), True, "anthropic_base_url"
    ),
    "gemini": EndpointSpec(
        "https://generativelanguage.googleapis.com/v1beta/openai/", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), True
    ),
    "xai": EndpointSpec("https://api.x.ai/v1", ("XAI_API_KEY",), True, "xai_base_url"),
    "openrouter": EndpointSpec(
        "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",), True, "openrouter_base_url"
    ),
}

#: Other spellings of the same providers.
PROVIDER_ALIASES: dict[str, str] = {"azure": "azure_openai", "lm_studio": "lmstudio", "google": "gemini"}

#: Key sent to servers that need none (the SDK insists on some key).
PLACEHOLDER_KEY = "not-needed"
#: Azure API version used when neither the config nor OPENAI_API_VERSION gives one.
AZURE_API_VERSION = "2024-10-21"

AZURE_FIELDS = ("azure_endpoint", "azure_deployment", "api_version", "default_headers")
#: Mem0 LLM-config keys that do not apply to scoring: accepted and ignored with a log line.
IGNORED_LLM_FIELDS = frozenset(
    {
        "top_p",
        "top_k",
        "enable_vision",
        "vision_details",
        "http_client_proxies",
        "reasoning_effort",
        "is_reasoning_model",
        "ssl_verify",
        "store",
        "models",
        "route",
        "site_url",
        "app_name",
        "response_callback",
    }
)


def canonical_provider(name: object, field_name: str = "provider") -> str:
    """The table key for ``name`` (aliases allowed), else ValueError naming the field."""
    key = PROVIDER_ALIASES.get(str(name), str(name)) if isinstance(name, str) else None
    if key not in ENDPOINTS:
        raise ValueError(
            f"{field_name}: unknown LLM provider {name!r}; OpenAI-compatible providers: {sorted(ENDPOINTS)}"
        )
    return key
