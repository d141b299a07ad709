"""Config fields of the causal-LM (LLM) rerankers: family and prompt overrides."""

from __future__ import annotations

from pydantic import Field, field_validator

from core.config import RerankerConfig
from core.local.families import family_by_name, family_names
from core.local.options import LocalRerankerConfig


class PromptOptions(RerankerConfig):
    """Overrides for LLM rerankers (Qwen3-Reranker, zerank, mxbai-rerank-v2, bge-reranker-v2-gemma).

    None everywhere: the family is read from the model name and its own template, tokens and
    instruction apply. Ignored fields are refused for checkpoints that are not LLM rerankers.
    """

    family: str | None = Field(
        default=None,
        description=f"LLM reranker family, one of {family_names()}; None: detected from the model name.",
    )
    prompt_template: str | list[str] | None = Field(
        default=None,
        description=(
            "Prompt with {query} and {document} (and optionally {instruction}); a list is tokenised "
            "segment by segment, '{bos}' standing for the BOS token. None: the family's template."
        ),
    )
    instruction: str | None = Field(
        default=None, description="Task instruction written into {instruction}; None: the family's default."
    )
    yes_token: str | None = Field(
        default=None, description="The 'relevant' answer token; None: the family's."
    )
    no_token: str | None = Field(
        default=None, description="The 'not relevant' answer token; None: the family's (if it has one)."
    )

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return family_by_name(value).name
        except Exception as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("prompt_template")
    @classmethod
    def _template_has_both_texts(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return None
        segments = [value] if isinstance(value, str) else value
        if not segments:
            raise ValueError("must hold at least one segment")
        for name in ("query", "document"):
            count = sum(segment.count("{" + name + "}") for segment in segments)
            if count != 1:
                raise ValueError(f"must contain {{{name}}} exactly once (found {count})")
        return value

    @field_validator("yes_token", "no_token")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return value

    def prompt_overrides(self) -> dict[str, object]:
        """The prompt fields set to something other than None."""
        names = ("family", "prompt_template", "instruction", "yes_token", "no_token")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class LocalPromptConfig(LocalRerankerConfig, PromptOptions):
    """A local reranker's config that can also hold an LLM reranker's prompt overrides."""
