"""``sentence_transformer``: a cross-encoder, an LLM reranker, or a bi-encoder with cosine scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from core.base import BaseReranker
from core.config import RerankerConfig
from core.errors import ConfigError
from core.local.checkpoints import Checkpoint, inspect_checkpoint
from core.local.models import require_local_runtime, resolve_model_name
from core.local.prompt_options import LocalPromptConfig
from core.normalize import ScoreScale
from core.providers.huggingface import refuse_prompt_options

if TYPE_CHECKING:
    from core.local.bi_encoder import BiEncoderRuntime
    from core.local.causal_lm import DecoderScorer
    from core.local.cross_encoder import CrossEncoderRuntime

Mode = Literal["auto", "cross_encoder", "bi_encoder", "causal_lm"]
Found = Literal["cross_encoder", "bi_encoder", "causal_lm"]
PROVIDER = "sentence_transformer"


class SentenceTransformerRerankerConfig(LocalPromptConfig):
    """Mem0's sentence-transformers fields, the mode, max_length, fast-path and LLM prompt options."""

    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2",
        description="Hub id or local path; 'embedded' is the packaged all-MiniLM-L6-v2.",
    )
    max_length: int | None = Field(default=None, ge=8, description="Token limit; None keeps the model's.")
    mode: Mode = Field(
        default="auto",
        description="auto reads the checkpoint; cross_encoder, bi_encoder or causal_lm (LLM) forces one.",
    )


#: The mode each kind of checkpoint is read in (a decoder classifier is a cross-encoder).
MODES: dict[str, Found] = {
    "cross_encoder": "cross_encoder",
    "decoder_classifier": "cross_encoder",
    "causal_lm": "causal_lm",
    "bi_encoder": "bi_encoder",
}


def checked_mode(checkpoint: Checkpoint, requested: Mode) -> Found:
    """The checkpoint's mode; a forced mode that contradicts it is refused.

    A cross-encoder read as a bi-encoder, a causal LM read as either (a bi-encoder pools its hidden
    states, a cross-encoder bolts a random head onto it) or the reverse gives meaningless scores.
    """
    found = MODES[checkpoint.kind]
    if requested not in ("auto", found):
        raise ConfigError(
            f"model {checkpoint.name!r} is a {found.replace('_', '-')} checkpoint (architectures: "
            f"{list(checkpoint.architectures)}); mode={requested!r} would load it with the wrong class and "
            f"return meaningless scores. Use mode='auto' or mode={found!r}."
        )
    return found


def detect_mode(model: str, requested: Mode, trust_remote_code: bool = False) -> Found:
    """Cross-encoder with a sequence-classification head, causal_lm for an LLM reranker, else bi-encoder."""
    return checked_mode(inspect_checkpoint(model, trust_remote_code), requested)


class SentenceTransformerReranker(BaseReranker):
    """Cross-encoder logits or LLM yes/no log-odds (sigmoid), or bi-encoder cosine ((cos + 1) / 2).

    Cross-encoder and LLM checkpoints run on the same shared runtimes as ``huggingface`` (one
    load serves both); a bi-encoder runs through sentence-transformers, or its ONNX export.
    """

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = SentenceTransformerRerankerConfig
    config: SentenceTransformerRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require_local_runtime(PROVIDER)  # before any import of numpy, torch or transformers
        self._path = resolve_model_name(self.config.model, PROVIDER)
        self._checkpoint: Checkpoint | None = None
        self._decoder: DecoderScorer | None = None

    @property
    def checkpoint(self) -> Checkpoint:
        """What the checkpoint is, read from its config files on first use."""
        if self._checkpoint is None:
            self._checkpoint = inspect_checkpoint(self._path, self.config.trust_remote_code)
        return self._checkpoint

    @property
    def mode(self) -> Found:
        """The mode in use, detected from the checkpoint on first use."""
        return checked_mode(self.checkpoint, self.config.mode)

    @property
    def scale(self) -> ScoreScale:
        """Logits (or yes/no log-odds) for a cross-encoder or LLM reranker, cosine for a bi-encoder."""
        return "cosine" if self.mode == "bi_encoder" else "logit"

    @property
    def encoder(self) -> CrossEncoderRuntime | BiEncoderRuntime | DecoderScorer:
        """The shared loaded model runtime (loaded on first use, once per process and key)."""
        mode, checkpoint = self.mode, self.checkpoint
        if checkpoint.is_decoder:
            if self._decoder is None:
                from core.local.causal_lm import DecoderScorer

                self._decoder = DecoderScorer(self.config, checkpoint, self.config.max_length)
            return self._decoder
        refuse_prompt_options(checkpoint, self.config)
        if mode == "cross_encoder":
            from core.local.cross_encoder import load_cross_encoder

            return load_cross_encoder(self.config)
        from core.local.bi_encoder import load_bi_encoder

        return load_bi_encoder(self.config, self.config.max_length)

    @property
    def model(self) -> Any:
        """The loaded PyTorch model (``None`` with the ONNX backend)."""
        return self.encoder.model

    def warmup(self) -> None:
        """Load the model (exporting it first for ``backend="onnx"``) and run one tiny batch."""
        self.encoder.warmup()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Raw logits (cross-encoder), yes/no log-odds (LLM) or cosines (bi-encoder), in input order."""
        from core.local.bi_encoder import BiEncoderRuntime, score_by_cosine
        from core.local.cross_encoder import CrossEncoderRuntime, score_pairs

        encoder = self.encoder
        if isinstance(encoder, BiEncoderRuntime):
            return score_by_cosine(encoder, query, texts, self.config)
        if isinstance(encoder, CrossEncoderRuntime):
            return score_pairs(encoder, query, texts, self.config, self.config.max_length)
        return encoder.score(query, texts)

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """A cross-encoder scores every request's pairs in shared batches; other models one at a time."""
        from core.local.multi_query import shared_batches

        scores = shared_batches(self.encoder, requests, self.config, self.config.max_length)
        return super().score_many(requests) if scores is None else scores
