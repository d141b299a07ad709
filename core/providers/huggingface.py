"""``huggingface``: a transformers sequence-classification cross-encoder on the local fast path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from core.base import BaseReranker
from core.config import RerankerConfig
from core.local.models import require_local_runtime, resolve_model_name
from core.local.options import LocalRerankerConfig
from core.normalize import ScoreScale

if TYPE_CHECKING:
    from core.local.cross_encoder import CrossEncoderRuntime


class HuggingFaceRerankerConfig(LocalRerankerConfig):
    """Mem0's HuggingFace fields (model, device, batch_size, max_length) plus the fast-path options."""

    model: str = Field(default="BAAI/bge-reranker-base", description="Hub id or local checkpoint path.")
    max_length: int = Field(
        default=512, ge=8, description="Tokens per (query, document) pair, capped at the model's limit."
    )


class HuggingFaceReranker(BaseReranker):
    """Cross-encoder scores from transformers; raw = logit (or log-odds), rerank_score = sigmoid."""

    provider: ClassVar[str] = "huggingface"
    config_class: ClassVar[type[RerankerConfig]] = HuggingFaceRerankerConfig
    score_scale: ClassVar[ScoreScale] = "logit"
    config: HuggingFaceRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require_local_runtime(self.provider)  # before any import of numpy, torch or transformers
        resolve_model_name(self.config.model, self.provider)

    @property
    def encoder(self) -> CrossEncoderRuntime:
        """The shared loaded cross-encoder (loaded on first use, once per process and key)."""
        from core.local.cross_encoder import load_cross_encoder

        return load_cross_encoder(self.config)

    def warmup(self) -> None:
        """Load the model (exporting it first for ``backend="onnx"``) and run one tiny batch."""
        self.encoder.warmup()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Logits for every pair, batched by ``batch_size`` over length-sorted pairs."""
        from core.local.cross_encoder import score_pairs

        return score_pairs(self.encoder, query, texts, self.config, self.config.max_length)
