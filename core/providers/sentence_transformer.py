"""``sentence_transformer``: a sentence-transformers CrossEncoder, or a bi-encoder with cosine scores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from core.base import BaseReranker
from core.config import RerankerConfig
from core.deps import require
from core.errors import ConfigError
from core.models import cached_model, resolve_device, resolve_model_name
from core.normalize import ScoreScale

Mode = Literal["auto", "cross_encoder", "bi_encoder"]
PROVIDER = "sentence_transformer"


class SentenceTransformerRerankerConfig(RerankerConfig):
    """Mem0's sentence-transformers fields plus the checkpoint mode and max_length."""

    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2",
        description="Hub id or local path; 'embedded' is the packaged all-MiniLM-L6-v2.",
    )
    device: str | None = Field(default=None, description="cuda, mps, cpu; None or 'auto' picks the best.")
    batch_size: int = Field(default=32, ge=1, description="Pairs (or texts) per forward pass.")
    show_progress_bar: bool = Field(default=False, description="Show a progress bar over batches.")
    max_length: int | None = Field(default=None, ge=8, description="Token limit; None keeps the model's.")
    mode: Mode = Field(
        default="auto", description="auto reads the checkpoint; cross_encoder or bi_encoder forces one."
    )
    trust_remote_code: bool = Field(default=False, description="Allow custom model code from the checkpoint.")


def _architectures(model: str, trust_remote_code: bool) -> list[str]:
    config_file = Path(model) / "config.json"
    if config_file.is_file():
        return list(json.loads(config_file.read_text()).get("architectures") or [])
    transformers = require("transformers", extra="local", provider=PROVIDER)
    try:
        config = transformers.AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
    return list(getattr(config, "architectures", None) or [])


def detect_mode(model: str, requested: Mode, trust_remote_code: bool = False) -> Literal[
    "cross_encoder", "bi_encoder"
]:
    """Cross-encoder if the checkpoint has a sequence-classification head, else bi-encoder.

    A forced mode that contradicts the checkpoint is refused: a cross-encoder read as
    a bi-encoder (or the reverse, with a fresh random head) gives meaningless scores.
    """
    archs = _architectures(model, trust_remote_code)
    is_cross = any(a.endswith("ForSequenceClassification") for a in archs)
    found = "cross_encoder" if is_cross else "bi_encoder"
    if requested not in ("auto", found):
        raise ConfigError(
            f"model {model!r} is a {found.replace('_', '-')} checkpoint (architectures: {archs}); "
            f"mode={requested!r} would load it with the wrong class and return meaningless scores. "
            f"Use mode='auto' or mode={found!r}."
        )
    return found


class SentenceTransformerReranker(BaseReranker):
    """CrossEncoder logits (sigmoid for rerank_score) or bi-encoder cosine ((cos + 1) / 2)."""

    provider: ClassVar[str] = PROVIDER
    config_class: ClassVar[type[RerankerConfig]] = SentenceTransformerRerankerConfig
    config: SentenceTransformerRerankerConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._path = resolve_model_name(self.config.model)
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
    def model(self) -> Any:
        """The shared loaded CrossEncoder or SentenceTransformer (loaded on first use)."""
        cfg, mode = self.config, self.mode
        device = resolve_device(cfg.device)
        key = (PROVIDER, mode, self._path, device, cfg.max_length, cfg.trust_remote_code)
        return cached_model(key, lambda: self._load(mode, device))

    def _load(self, mode: str, device: str) -> Any:
        st = require("sentence_transformers", extra="local", provider=PROVIDER)
        cfg = self.config
        try:
            if mode == "cross_encoder":
                return st.CrossEncoder(
                    self._path, device=device, max_length=cfg.max_length, trust_remote_code=cfg.trust_remote_code
                )
            model = st.SentenceTransformer(self._path, device=device, trust_remote_code=cfg.trust_remote_code)
        except OSError as exc:
            raise ConfigError(f"cannot load model {cfg.model!r}: {exc}") from exc
        if cfg.max_length is not None:
            model.max_seq_length = cfg.max_length
        return model

    def warmup(self) -> None:
        """Load the model now."""
        _ = self.model

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Raw logits (cross-encoder) or cosine similarities (bi-encoder), in input order."""
        model, cfg = self.model, self.config
        if self.mode == "bi_encoder":
            kwargs: dict[str, Any] = {"batch_size": cfg.batch_size, "normalize_embeddings": True}
            q = model.encode([query], show_progress_bar=False, **kwargs)
            d = model.encode(list(texts), show_progress_bar=cfg.show_progress_bar, **kwargs)
            return [float(x) for x in (d @ q[0])]
        torch = require("torch", extra="local", provider=PROVIDER)
        out = model.predict(
            [(query, t) for t in texts],
            batch_size=cfg.batch_size,
            show_progress_bar=cfg.show_progress_bar,
            activation_fn=torch.nn.Identity(),
            convert_to_numpy=True,
        )
        if out.ndim == 2 and out.shape[1] == 2:
            return [float(x) for x in out[:, 1] - out[:, 0]]
        if out.ndim == 2 and out.shape[1] != 1:
            raise ConfigError(f"model {cfg.model!r} has {out.shape[1]} labels; a reranker needs 1 or 2")
        return [float(x) for x in out.reshape(-1)]
