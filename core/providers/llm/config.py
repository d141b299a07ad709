"""The LLM reranker's config: Mem0's fields plus scoring mode, windowing, truncation and cache."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from core.providers.hosted.config import ApiRerankerConfig
from core.providers.llm.endpoint_table import canonical_provider
from core.providers.llm.endpoints import check_llm_override
from core.providers.llm.prompts import check_template

#: The provider name of the LLM reranker.
PROVIDER = "llm_reranker"

Mode = Literal["pointwise", "logprobs", "listwise"]


class LLMRerankerConfig(ApiRerankerConfig):
    """Mem0's LLM reranker fields plus scoring mode, concurrency, windowing, truncation and cache.

    ``llm_provider`` is the LLM vendor (Mem0 calls it ``provider``, which is accepted);
    ``max_concurrency`` is the layer's one concurrency setting (Mem0's ``max_workers`` and the
    former ``concurrency`` are accepted).
    """

    llm_provider: str = Field(
        default="openai",
        validation_alias=AliasChoices("llm_provider", "provider"),
        description="The LLM vendor (Mem0's 'provider'): openai, azure_openai, ollama, vllm, lmstudio, "
        "groq, together, deepseek, anthropic, gemini, xai, openrouter.",
    )
    model: str = Field(default="gpt-4o-mini", min_length=1, description="Chat model (Azure: deployment).")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(default=100, ge=1, description="Answer tokens for pointwise scoring.")
    scoring_prompt: str | None = Field(
        default=None, description="Pointwise user prompt with {query} and {document} placeholders."
    )
    llm: dict[str, Any] | None = Field(
        default=None, description="Mem0's nested {'provider', 'config'}; its values override the top level."
    )
    mode: Mode = Field(default="pointwise", description="pointwise, logprobs or listwise.")
    score_max: float = Field(
        default=1.0, gt=0, description="Top of the scale the prompt declares: 1 (0.0-1.0), 10 (0-10)..."
    )
    max_concurrency: int = Field(
        default=20,
        ge=1,
        strict=True,
        validation_alias=AliasChoices("max_concurrency", "concurrency", "max_workers"),
        description="Chat calls in flight at once for the whole call, every query of rerank_many / "
        "arerank_many included (aliases: concurrency, Mem0's max_workers).",
    )
    top_logprobs: int = Field(default=5, ge=1, le=20, description="Alternatives asked for in logprobs mode.")
    window_size: int = Field(default=20, ge=2, description="Listwise: documents per window.")
    window_step: int = Field(default=10, ge=1, description="Listwise: how far the window moves up.")
    listwise_passes: int = Field(
        default=1, ge=1, description="Listwise: sweeps, stopping when one changes nothing."
    )
    max_query_chars: int = Field(default=2000, ge=16, description="The query is cut to this many characters.")
    max_document_chars: int = Field(
        default=4000, ge=16, description="Each document is cut to this many characters."
    )
    cache_size: int = Field(
        default=1024, ge=0, description="Answers kept in the in-memory LRU cache; 0: none."
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds allowed for one chat call.")
    deadline: float | None = Field(
        default=120.0,
        gt=0,
        description="Seconds for the whole rerank call, retries included; None: no bound.",
    )

    @field_validator("llm_provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        return canonical_provider(value)

    @field_validator("scoring_prompt")
    @classmethod
    def _template_fields(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> LLMRerankerConfig:
        if self.llm is not None:
            check_llm_override(self.llm, self.llm_provider)
        if self.window_step >= self.window_size:
            raise ValueError(
                f"window_step ({self.window_step}) must be smaller than window_size ({self.window_size})"
            )
        if "documents_per_request" in self.model_fields_set:
            raise ValueError("documents_per_request does not apply to llm_reranker (see window_size)")
        return self
