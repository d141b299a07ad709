"""A sentence-transformers bi-encoder loaded once per (model, device, precision, backend); cosine scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.deps import require
from core.errors import ConfigError
from core.local.backends import Forward, OnnxForward, TorchForward, positional_module
from core.local.batching import iter_padded_batches, progress_bar
from core.local.calibration import PASSAGES, QUERIES
from core.local.models import cached_model, resolve_model_name
from core.local.onnx_export import ensure_onnx
from core.local.openvino_backend import OpenVinoForward, ensure_int8_ir
from core.local.options import LOCAL, LocalRerankerConfig
from core.local.precision import cpu_has_native_bf16, resolve_runtime
from core.local.threads import (
    apply_torch_threads,
    check_session_threads,
    claim_torch_threads,
    thread_count,
)
from core.local.tokenizing import LockedTokenizer, TokenEncoder, pad_values
from core.local.windows import best_per_document, room_alone, split_documents


def sentence_embedding_of(model: Any, inputs: dict[str, Any]) -> Any:
    """A SentenceTransformer's pooled (and, if it has the module, normalised) embeddings."""
    return model(dict(inputs))["sentence_embedding"]


class BiEncoderRuntime:
    """Embeds texts with a SentenceTransformer (PyTorch) or its ONNX export (pooling included).

    Both backends run the same length-sorted, padded batches. ``model`` is the
    SentenceTransformer with the PyTorch backend, ``None`` with ONNX.
    """

    def __init__(
        self,
        model: str,
        device: str,
        precision: str,
        backend: str,
        max_length: int | None,
        trust_remote_code: bool,
        threads: int | None,
    ) -> None:
        st = require("sentence_transformers", extra="local", provider=LOCAL)
        torch = require("torch", extra="local", provider=LOCAL)
        self.name, self.device, self.precision, self.backend = model, device, precision, backend
        kwargs = {"attn_implementation": "eager"} if backend in ("onnx", "openvino") else {}
        try:
            loaded = st.SentenceTransformer(
                model, device=device, trust_remote_code=trust_remote_code, model_kwargs=kwargs
            )
        except Exception as exc:
            raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
        if max_length is not None:
            loaded.max_seq_length = max_length
        self.max_length = int(loaded.max_seq_length)
        self.tokenizer = LockedTokenizer(loaded.tokenizer)
        self.pad_values = pad_values(self.tokenizer)
        self.token_encoder = TokenEncoder(loaded.tokenizer)
        self.model: Any = None
        self.forward: Forward
        #: The ONNX Runtime session's thread count (None with PyTorch, whose count is process-wide).
        self.session_threads: int | None = None
        if backend == "onnx":
            path = ensure_onnx(model, "bi_encoder", precision, lambda: self._export_module(loaded))
            self.session_threads = thread_count(threads)
            self.forward = OnnxForward(path, device, self.session_threads)
        elif backend == "openvino":
            onnx_file = ensure_onnx(model, "bi_encoder", "float32", lambda: self._export_module(loaded))
            if precision == "int8":
                onnx_file = ensure_int8_ir(onnx_file, self._calibration_batches)
                precision = "bfloat16" if cpu_has_native_bf16() else "float32"
            self.session_threads = thread_count(threads)
            self.forward = OpenVinoForward(onnx_file, self.session_threads, precision)
        else:
            apply_torch_threads(threads)
            self.model = loaded.to(getattr(torch, precision)).eval()
            self.forward = TorchForward(self.model, device, sentence_embedding_of)

    def _export_module(self, loaded: Any) -> tuple[Any, dict[str, Any]]:
        """The whole SentenceTransformer (transformer, pooling, dense, normalise) and example inputs."""
        loaded.to("cpu")
        example = dict(self.tokenizer(["a text", "a longer text"], padding=True, return_tensors="pt"))
        return positional_module(loaded, list(example), sentence_embedding_of), example

    def _calibration_batches(self) -> list[dict[str, np.ndarray]]:
        """The shipped calibration queries and passages, tokenised, one unpadded batch per text."""
        texts = [query for queries in QUERIES for query in queries[:2]] + list(PASSAGES)
        features = self.token_encoder(texts, None, self.max_length)
        padding_side = str(getattr(self.tokenizer, "padding_side", "right"))
        return [batch for _, batch in iter_padded_batches(features, 1, self.pad_values, padding_side)]

    def embed(self, texts: Sequence[str], batch_size: int, progress: Any) -> np.ndarray:
        """L2-normalised embeddings of ``texts``, one row each, in input order."""
        features = self.token_encoder(list(texts), None, self.max_length)
        padding_side = str(getattr(self.tokenizer, "padding_side", "right"))
        rows: np.ndarray | None = None
        for indices, batch in iter_padded_batches(
            features, batch_size, self.pad_values, padding_side, progress
        ):
            out = self.forward(batch)
            if rows is None:
                rows = np.empty((len(texts), out.shape[1]), dtype=np.float32)
            rows[indices] = out
        assert rows is not None, "texts is never empty here"
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.asarray(rows / np.maximum(norms, 1e-12), dtype=np.float32)

    def warmup(self) -> None:
        """Embed one short text so the first real call pays no kernel set-up."""
        self.embed(["warm up"], 1, None)


def load_bi_encoder(config: LocalRerankerConfig, max_length: int | None) -> BiEncoderRuntime:
    """The process-wide runtime for ``config``'s (model, device, precision, backend, max_length)."""
    model = resolve_model_name(str(config.model))
    device, backend, precision = resolve_runtime(config, "bi_encoder")
    key = ("bi_encoder", model, device, precision, backend, max_length, config.trust_remote_code)
    if backend == "torch":
        claim_torch_threads(config.num_threads, model)
    runtime = cached_model(
        key,
        lambda: BiEncoderRuntime(
            model, device, precision, backend, max_length, config.trust_remote_code, config.num_threads
        ),
    )
    check_session_threads(config.num_threads, runtime.session_threads, model)
    return runtime


def score_by_cosine(
    runtime: BiEncoderRuntime, query: str, texts: Sequence[str], config: LocalRerankerConfig
) -> list[float]:
    """Cosine similarity of each text to ``query``; with ``long_documents="windows"`` its best window."""
    progress = progress_bar(config.show_progress_bar)
    query_row = runtime.embed([query], 1, None)[0]
    if config.long_documents == "truncate":
        return [float(x) for x in runtime.embed(texts, config.batch_size, progress) @ query_row]
    room = room_alone(runtime.tokenizer, runtime.max_length)
    plan = split_documents(runtime.tokenizer, texts, room, config.window_overlap, config.max_windows_per_doc)
    scores = [float(x) for x in runtime.embed(plan.texts, config.batch_size, progress) @ query_row]
    return best_per_document(scores, plan.owners, len(texts))
