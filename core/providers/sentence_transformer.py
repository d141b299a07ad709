"""``sentence_transformer``: a cross-encoder checkpoint, or a bi-encoder with cosine scores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from core.base import BaseReranker
from core.config import RerankerConfig
from core.deps import require
from core.errors import ConfigError
from core.local.models import require_local_runtime, resolve_model_name
from core.local.options import LocalRerankerConfig
from core.normalize import ScoreScale

if TYPE_CHECKING:
    from core.local.bi_encoder import BiEncoderRuntime
    from core.local.cross_encoder import CrossEncoderRuntime

Mode = Literal["auto", "cross_encoder", "bi_encoder"]
PROVIDER = "sentence_transformer"


class SentenceTransformerRerankerConfig(LocalRerankerConfig):
    """Mem0's sentence-transformers fields plus the checkpoint mode, max_length and fast-path options."""

    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2",
        description="Hub id or local path; 'embedded' is the packaged all-MiniLM-L6-v2.",
    )
    max_length: int | None = Field(default=None, ge=8, description="Token limit; None keeps the model's.")
    mode: Mode = Field(
        default="auto", description="auto reads the checkpoint; cross_encoder or bi_encoder forces one."
    )


def _architectures(model: str, trust_remote_code: bool) -> list[str]:
    config_file = Path(model) / "config.json"
    if config_file.is_file():
        return list(json.loads(config_file.read_text()).get("architectures") or [])
    transformers = require("transformers", extra="local", provider=PROVIDER)
    try:
        config = transformers.AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
    return list(getattr(config, "architectures", None) or [])


def detect_mode(
    model: str, requested: Mode, trust_remote_code: bool = False
) -> Literal["cross_encoder", "bi_encoder"]:
    """Cross-encoder if the checkpoint has a sequence-classification head, else bi-encoder.

    A forced mode that contradicts the checkpoint is refused: a cross-encoder read as
    a bi-encoder (or the reverse, with a fresh random head) gives meaningless scores.
    """
    archs = _architectures(model, trust_remote_code)
    is_cross = any(a.endswith("ForSequenceClassification") for a in archs)
    found: Literal["cross_encoder", "bi_encoder"] = "cross_encoder" if is_cross else "bi_encoder"
    if requested not in ("auto", found):
        raise ConfigError(
            f"model {model!r} is a {found.replace('_', '-')} checkpoint (architectures: {archs}); "
            f"mode={requested!r} would load it with the wrong class and return meaningless scores. "
            f"Use mode='auto' or mode={found!r}."
        )
    return found


class SentenceTransformerReranker(BaseReranker):
    """Cross-encoder logits (sigmoid for rerank_score) or bi-encoder cosine ((cos + 1) / 2).

    A cross-encoder checkpoint runs on the same shared runtime as ``huggingface`` (one load
    serves both); a bi-encoder runs through sentence-transformers, or its ONNX export.
    """

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = SentenceTransformerRerankerConfig
    config: SentenceTransformerRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        require_local_runtime(PROVIDER)  # before any import of numpy, torch or transformers
        self._path = resolve_model_name(self.config.model, PROVIDER)
        self._mode: Literal["cross_encoder", "bi_encoder"] | None = None

    @property
    def mode(self) -> Literal["cross_encoder", "bi_encoder"]:
        """The mode in use, detected from the checkpoint on first use."""
        if self._mode is None:
            self._mode = detect_mode(self._path, self.config.mode, self.config.trust_remote_code)
        return self._mode

    @property
    def scale(self) -> ScoreScale:
        """Logits for a cross-encoder, cosine similarity for a bi-encoder."""
        return "logit" if self.mode == "cross_encoder" else "cosine"

    @property
    def encoder(self) -> CrossEncoderRuntime | BiEncoderRuntime:
        """The shared loaded model runtime (loaded on first use, once per process and key)."""
        if self.mode == "cross_encoder":
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
        """Raw logits (cross-encoder) or cosine similarities (bi-encoder), in input order."""
        from core.local.bi_encoder import BiEncoderRuntime, score_by_cosine
        from core.local.cross_encoder import score_pairs

        encoder = self.encoder
        if isinstance(encoder, BiEncoderRuntime):
            return score_by_cosine(encoder, query, texts, self.config)
        return score_pairs(encoder, query, texts, self.config, self.config.max_length)
