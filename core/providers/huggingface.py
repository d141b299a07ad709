"""``huggingface``: a transformers reranker on the local fast path.

A sequence-classification cross-encoder, a decoder classifier (e.g. a ``Qwen3ForSequenceClassification``
conversion) or an LLM reranker (Qwen3-Reranker, zerank, mxbai-rerank-v2, bge-reranker-v2-gemma)
scored from its yes/no logits; the checkpoint's files say which, before any weight is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from core.base import BaseReranker
from core.config import RerankerConfig
from core.errors import ConfigError
from core.local.models import require_local_runtime, resolve_model_name
from core.local.prompt_options import LocalPromptConfig
from core.normalize import ScoreScale

if TYPE_CHECKING:
    from core.local.causal_lm import DecoderScorer
    from core.local.checkpoints import Checkpoint
    from core.local.cross_encoder import CrossEncoderRuntime


class HuggingFaceRerankerConfig(LocalPromptConfig):
    """Mem0's HuggingFace fields (model, device, batch_size, max_length), fast-path and LLM prompt options."""

    model: str = Field(default="BAAI/bge-reranker-base", description="Hub id or local checkpoint path.")
    max_length: int = Field(
        default=512,
        ge=8,
        description="Tokens per pair (an LLM's prompt included), capped at the model's limit.",
    )


def refuse_prompt_options(checkpoint: Checkpoint, config: LocalPromptConfig) -> None:
    """Prompt overrides only mean something for a decoder checkpoint: refuse them elsewhere."""
    overrides = config.prompt_overrides()
    if overrides and not checkpoint.is_decoder:
        raise ConfigError(
            f"{sorted(overrides)} apply to LLM (decoder) rerankers only; model {checkpoint.name!r} is a "
            f"{checkpoint.kind.replace('_', '-')} checkpoint"
        )


class HuggingFaceReranker(BaseReranker):
    """Cross-encoder logits, or an LLM reranker's yes/no log-odds; rerank_score = sigmoid(raw).

    Raw scores per family are documented in ``docs/local-llm-rerankers.md``.
    """

    provider: ClassVar[str] = "huggingface"
    config_class: ClassVar[type[RerankerConfig]] = HuggingFaceRerankerConfig
    score_scale: ClassVar[ScoreScale] = "logit"
    config: HuggingFaceRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require_local_runtime(self.provider)  # before any import of numpy, torch or transformers
        resolve_model_name(self.config.model, self.provider)
        self._checkpoint: Checkpoint | None = None
        self._decoder: DecoderScorer | None = None

    @property
    def checkpoint_name(self) -> str:
        """The hub id or folder the model is loaded from."""
        return resolve_model_name(self.config.model, self.provider)

    @property
    def checkpoint(self) -> Checkpoint:
        """What the checkpoint is, read from its config files on first use."""
        if self._checkpoint is None:
            from core.local.checkpoints import inspect_checkpoint

            self._checkpoint = inspect_checkpoint(self.checkpoint_name, self.config.trust_remote_code)
        return self._checkpoint

    @property
    def encoder(self) -> CrossEncoderRuntime | DecoderScorer:
        """The loaded model: a cross-encoder runtime, or this reranker's decoder scorer."""
        checkpoint = self.checkpoint
        if checkpoint.is_decoder:
            if self._decoder is None:
                from core.local.causal_lm import DecoderScorer

                self._decoder = DecoderScorer(self.config, checkpoint, self.config.max_length)
            return self._decoder
        refuse_prompt_options(checkpoint, self.config)
        from core.local.cross_encoder import load_cross_encoder

        return load_cross_encoder(self.config)

    def warmup(self) -> None:
        """Load the model (exporting it first for ``backend="onnx"``) and run one tiny batch."""
        self.encoder.warmup()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Logits (or yes/no log-odds) for every pair, batched by ``batch_size`` over length-sorted pairs."""
        from core.local.cross_encoder import CrossEncoderRuntime, score_pairs

        encoder = self.encoder
        if isinstance(encoder, CrossEncoderRuntime):
            return score_pairs(encoder, query, texts, self.config, self.config.max_length)
        return encoder.score(query, texts)

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """A cross-encoder scores every request's pairs in shared batches; a causal LM one at a time."""
        from core.local.multi_query import shared_batches

        scores = shared_batches(self.encoder, requests, self.config, self.config.max_length)
        return super().score_many(requests) if scores is None else scores
