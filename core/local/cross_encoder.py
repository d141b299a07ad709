"""A cross-encoder loaded once per (model, device, precision, backend), and how it scores pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.deps import require
from core.errors import ConfigError
from core.local.backends import Forward, OnnxForward, TorchForward, positional_module
from core.local.batching import Features, iter_padded_batches
from core.local.calibration import calibration_pairs
from core.local.checkpoints import refuse_missing_weights
from core.local.models import cached_model, resolve_model_name
from core.local.multi_query import score_requests
from core.local.onnx_export import ensure_onnx
from core.local.openvino_backend import OpenVinoForward, ensure_int8_ir, stream_count
from core.local.options import LOCAL, LocalRerankerConfig
from core.local.precision import cpu_has_native_bf16, resolve_runtime
from core.local.threads import (
    apply_torch_threads,
    check_session_threads,
    claim_torch_threads,
    thread_count,
)
from core.local.tokenizing import LockedTokenizer, TokenEncoder, pad_values


def model_length_limit(tokenizer: Any, config: Any) -> int:
    """The most tokens the model takes: the tokenizer's limit, capped by its position table."""
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(v) for v in limits if isinstance(v, int) and 0 < v < 1_000_000]
    return min(usable) if usable else 512


def logits_of(model: Any, inputs: dict[str, Any]) -> Any:
    """A sequence-classification model's logits for keyword inputs."""
    return model(**inputs).logits


class CrossEncoderRuntime:
    """Tokenizer, forward pass (PyTorch or ONNX Runtime) and score reading of one cross-encoder.

    ``model`` is the PyTorch module (``None`` with the ONNX backend); ``forward`` runs one
    padded batch and returns its logits.
    """

    def __init__(
        self,
        model: str,
        device: str,
        precision: str,
        backend: str,
        trust_remote_code: bool,
        threads: int | None,
    ) -> None:
        transformers = require("transformers", extra="local", provider=LOCAL)
        self.name, self.device, self.precision, self.backend = model, device, precision, backend
        self.trust_remote_code = trust_remote_code
        try:
            self.tokenizer = LockedTokenizer(
                transformers.AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
            )
            config = transformers.AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        except Exception as exc:
            raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
        self.num_labels = int(config.num_labels)
        if self.num_labels not in (1, 2):
            raise ConfigError(
                f"model {model!r} has {self.num_labels} labels; a reranker needs a 1- or 2-logit head"
            )
        self.length_limit = model_length_limit(self.tokenizer, config)
        self.pad_values = pad_values(self.tokenizer)
        self.token_encoder = TokenEncoder(self.tokenizer.inner)
        self.model: Any = None
        self.forward: Forward
        #: The ONNX Runtime session's thread count (None with PyTorch, whose count is process-wide).
        self.session_threads: int | None = None
        if backend == "onnx":
            path = ensure_onnx(model, "cross_encoder", precision, self._export_module)
            self.session_threads = thread_count(threads)
            self.forward = OnnxForward(path, device, self.session_threads)
        elif backend == "openvino":
            self.session_threads = thread_count(threads)
            self.forward = self._openvino_forward(precision, self.session_threads)
        else:
            apply_torch_threads(threads)
            self.model = self._load_torch(model, precision, trust_remote_code)
            self.forward = TorchForward(self.model, device, logits_of)

    def _load_torch(self, model: str, precision: str, trust_remote_code: bool, **kwargs: Any) -> Any:
        torch = require("torch", extra="local", provider=LOCAL)
        transformers = require("transformers", extra="local", provider=LOCAL)
        try:
            loaded, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                model,
                dtype=getattr(torch, precision),
                trust_remote_code=trust_remote_code,
                output_loading_info=True,
                **kwargs,
            )
        except Exception as exc:
            raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
        refuse_missing_weights(model, info, type(loaded).__name__)  # never score with a random head
        return loaded.to(self.device).eval()

    def _export_module(self) -> tuple[Any, dict[str, Any]]:
        """The float32 model (eager attention: plain matrix products in ONNX) and example inputs."""
        model = self._load_torch(
            self.name, "float32", self.trust_remote_code, attn_implementation="eager"
        ).to("cpu")
        example = dict(
            self.tokenizer(
                ["a query", "a query"], ["a document", "a longer document"], padding=True, return_tensors="pt"
            )
        )
        return positional_module(model, list(example), logits_of), example

    def _openvino_forward(self, precision: str, threads: int) -> OpenVinoForward:
        """OpenVINO on the float32 ONNX export, or on its int8 IR (calibrated once, cached)."""
        onnx_file = ensure_onnx(self.name, "cross_encoder", "float32", self._export_module)
        if precision != "int8":
            return OpenVinoForward(onnx_file, threads, precision, streams=stream_count(threads))
        path = ensure_int8_ir(onnx_file, self._calibration_batches)
        # What NNCF leaves unquantised runs in bf16 where the CPU computes it natively.
        return OpenVinoForward(
            path, threads, "bfloat16" if cpu_has_native_bf16() else "float32", streams=stream_count(threads)
        )

    def _calibration_batches(self) -> list[dict[str, np.ndarray]]:
        """The shipped calibration pairs, tokenised, one unpadded batch per pair (longest first)."""
        pairs = calibration_pairs()
        features = self.token_encoder([q for q, _ in pairs], [p for _, p in pairs], self.length_limit)
        padding_side = str(getattr(self.tokenizer, "padding_side", "right"))
        return [batch for _, batch in iter_padded_batches(features, 1, self.pad_values, padding_side)]

    def max_length(self, requested: int | None) -> int:
        """``requested`` tokens per pair, capped at the model's limit (the limit when None)."""
        return self.length_limit if requested is None else min(requested, self.length_limit)

    def encode(self, query: str, texts: Sequence[str], max_length: int) -> dict[str, list[list[int]]]:
        """Tokenise every (query, text) pair once, truncated, without padding."""
        return self.encode_pairs([query] * len(texts), texts, max_length)

    def encode_pairs(
        self, queries: Sequence[str], texts: Sequence[str], max_length: int
    ) -> dict[str, list[list[int]]]:
        """Tokenise the pairs ``(queries[i], texts[i])`` (of any queries) once, truncated, unpadded."""
        return self.token_encoder(list(queries), list(texts), max_length)

    def relevance(self, logits: np.ndarray) -> np.ndarray:
        """One score per row: the single logit, or logit[1] - logit[0] (log-odds) for two labels."""
        return logits[:, 0] if self.num_labels == 1 else logits[:, 1] - logits[:, 0]

    def score(
        self, query: str, texts: Sequence[str], max_length: int, batch_size: int, progress: Any
    ) -> list[float]:
        """Scores of every pair: tokenised once, run in length-sorted batches of ``batch_size``."""
        return self.score_features(self.encode(query, texts, max_length), batch_size, progress)

    def score_features(self, features: Features, batch_size: int, progress: Any) -> list[float]:
        """Scores of tokenised pairs (``encode_pairs``), run in length-sorted batches of ``batch_size``."""
        count = len(features["input_ids"])
        scores = np.empty(count, dtype=np.float32)
        padding_side = str(getattr(self.tokenizer, "padding_side", "right"))
        if isinstance(self.forward, OpenVinoForward):
            size = self.forward.batch_size(count, batch_size)
            batches = iter_padded_batches(features, size, self.pad_values, padding_side, progress)
            for indices, logits in self.forward.run_batches(batches):
                scores[indices] = self.relevance(logits)
        else:
            for indices, batch in iter_padded_batches(
                features, batch_size, self.pad_values, padding_side, progress
            ):
                scores[indices] = self.relevance(self.forward(batch))
        return [float(s) for s in scores]

    def warmup(self) -> None:
        """Run one tiny batch so the first real call pays no kernel set-up."""
        self.score("warm up", ["warm up"], 16, 1, None)


def load_cross_encoder(config: LocalRerankerConfig) -> CrossEncoderRuntime:
    """The process-wide runtime for ``config``'s (model, device, precision, backend)."""
    model = resolve_model_name(str(config.model))
    device, backend, precision = resolve_runtime(config, "cross_encoder")
    key = ("cross_encoder", model, device, precision, backend, config.trust_remote_code)
    if backend == "torch":
        claim_torch_threads(config.num_threads, model)
    runtime = cached_model(
        key,
        lambda: CrossEncoderRuntime(
            model, device, precision, backend, config.trust_remote_code, config.num_threads
        ),
    )
    check_session_threads(config.num_threads, runtime.session_threads, model)
    return runtime


def score_pairs(
    runtime: CrossEncoderRuntime,
    query: str,
    texts: Sequence[str],
    config: LocalRerankerConfig,
    max_length: int | None,
) -> list[float]:
    """Raw scores of ``texts`` for ``query`` (best window each with ``long_documents="windows"``):
    one request of :func:`~core.local.multi_query.score_requests`, the path the server batches."""
    return score_requests(runtime, [(query, texts)], config, max_length)[0]
