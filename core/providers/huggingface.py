"""``huggingface``: a transformers sequence-classification cross-encoder with explicit batching."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from core.base import BaseReranker
from core.config import RerankerConfig
from core.deps import require
from core.errors import ConfigError
from core.models import cached_model, resolve_device, resolve_model_name
from core.normalize import ScoreScale

DType = Literal["float32", "float16", "bfloat16"]


class HuggingFaceRerankerConfig(RerankerConfig):
    """Mem0's HuggingFace fields plus dtype and progress options."""

    model: str = Field(default="BAAI/bge-reranker-base", description="Hub id or local checkpoint path.")
    device: str | None = Field(default=None, description="cuda, mps, cpu; None or 'auto' picks the best.")
    batch_size: int = Field(default=32, ge=1, description="Pairs per forward pass.")
    max_length: int = Field(default=512, ge=8, description="Tokens per (query, document) pair.")
    dtype: DType = Field(default="float32", description="Weights precision; float16/bfloat16 for GPUs.")
    show_progress_bar: bool = Field(default=False, description="Show a tqdm bar over batches.")
    trust_remote_code: bool = Field(default=False, description="Allow custom model code from the checkpoint.")


class LoadedCrossEncoder:
    """A tokenizer and model pair, loaded once and shared by every reranker that asks."""

    def __init__(self, model: str, device: str, dtype: str, trust_remote_code: bool) -> None:
        torch = require("torch", extra="local", provider="huggingface")
        transformers = require("transformers", extra="local", provider="huggingface")
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                model, trust_remote_code=trust_remote_code
            )
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
                model, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
            )
        except Exception as exc:
            raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
        self.model.to(device).eval()
        self.device = device
        self.num_labels = int(self.model.config.num_labels)
        if self.num_labels not in (1, 2):
            raise ConfigError(
                f"model {model!r} has {self.num_labels} labels; a reranker needs a 1- or 2-logit head"
            )

    def encode(self, query: str, texts: Sequence[str], max_length: int) -> list[dict[str, Any]]:
        """Tokenise every (query, text) pair once, without padding."""
        enc = self.tokenizer([query] * len(texts), list(texts), truncation=True, max_length=max_length)
        keys = list(enc.keys())
        return [{k: enc[k][i] for k in keys} for i in range(len(texts))]

    def logits(self, features: list[dict[str, Any]]) -> list[float]:
        """One relevance logit per pair: the single logit, or logit[1] - logit[0]."""
        torch = require("torch", extra="local", provider="huggingface")
        batch = self.tokenizer.pad(features, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model(**batch).logits.float()
        values = out[:, 0] if self.num_labels == 1 else out[:, 1] - out[:, 0]
        return [float(v) for v in values.cpu()]


class HuggingFaceReranker(BaseReranker):
    """Cross-encoder scores from transformers; raw = logit (or log-odds), rerank_score = sigmoid."""

    provider: ClassVar[str] = "huggingface"
    config_class: ClassVar[type[RerankerConfig]] = HuggingFaceRerankerConfig
    score_scale: ClassVar[ScoreScale] = "logit"
    config: HuggingFaceRerankerConfig

    @property
    def encoder(self) -> LoadedCrossEncoder:
        """The shared loaded model (loaded on first use)."""
        cfg = self.config
        model, device = resolve_model_name(cfg.model), resolve_device(cfg.device)
        key = ("huggingface", model, device, cfg.dtype, cfg.trust_remote_code)
        return cached_model(key, lambda: LoadedCrossEncoder(model, device, cfg.dtype, cfg.trust_remote_code))

    def warmup(self) -> None:
        """Load the model now."""
        _ = self.encoder

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Logits for every pair, batched by ``batch_size`` over length-sorted pairs."""
        encoder = self.encoder
        features = encoder.encode(query, texts, self.config.max_length)
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        size = self.config.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        scores = [0.0] * len(features)
        tqdm = require("tqdm", extra="local", provider=self.provider).tqdm
        for batch in tqdm(batches, disable=not self.config.show_progress_bar, desc="rerank"):
            for i, value in zip(batch, encoder.logits([features[i] for i in batch]), strict=True):
                scores[i] = value
        return scores
