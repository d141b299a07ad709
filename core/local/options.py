"""Config fields every local reranker shares: device, batching, precision, backend, long documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from core.config import RerankerConfig

#: How the local runtimes name themselves in a missing-dependency error.
LOCAL = "huggingface / sentence_transformer"
ONNX = "huggingface / sentence_transformer with backend='onnx'"
OPENVINO = "huggingface / sentence_transformer with backend='openvino'"

Backend = Literal["auto", "torch", "onnx", "openvino"]
Precision = Literal["auto", "float32", "float16", "bfloat16", "int8"]
LongDocuments = Literal["truncate", "windows"]

#: What ``device`` accepts: PyTorch device names (an index after cuda/xpu), or auto.
DEVICES = ("auto", "cpu", "cuda", "cuda:<index>", "mps", "xpu", "xpu:<index>")
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")
#: A model name that can only be a local path: absolute, ./ ../ ~, a Windows path, or 2+ slashes.
_PATH_LIKE = re.compile(r"^(/|\.{1,2}[/\\]|~|[A-Za-z]:[/\\])|\\|/.*/")

#: Precisions each backend can run.
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {
    "torch": ("auto", "float32", "float16", "bfloat16"),
    "onnx": ("auto", "float32", "int8"),
    "openvino": ("auto", "float32", "bfloat16", "int8"),
    "auto": ("auto", "float32", "float16", "bfloat16", "int8"),
}


class LocalRerankerConfig(RerankerConfig):
    """Fields shared by the local model rerankers (Mem0's names first, then the fast-path options)."""

    device: str | None = Field(
        default=None, description="cpu, cuda, cuda:N, mps, xpu, xpu:N; None or 'auto' picks the best."
    )
    batch_size: int = Field(default=32, ge=1, description="Inputs per forward pass; bounds memory.")
    show_progress_bar: bool = Field(default=False, description="Show a tqdm bar over batches.")
    trust_remote_code: bool = Field(default=False, description="Allow custom model code from the checkpoint.")
    dtype: Precision = Field(
        default="auto",
        description=(
            "auto: the fastest precision that keeps the ranking for the backend and CPU: openvino int8 on "
            "CPUs with int8 dot products (VNNI/AMX); torch bfloat16 on CPUs with native bf16, float16 on "
            "CUDA; else float32 (always float32 for onnx). int8: static (openvino) or dynamic (onnx)."
        ),
    )
    backend: Backend = Field(
        default="auto",
        description=(
            "auto (openvino for a cross-encoder on the CPU when installed, else torch), torch, onnx "
            "(ONNX Runtime) or openvino (OpenVINO); onnx and openvino export once and cache on disk."
        ),
    )
    num_threads: int | None = Field(
        default=None, ge=1, description="CPU threads; None uses the CPUs this process may run on."
    )
    long_documents: LongDocuments = Field(
        default="truncate",
        description="truncate at max_length, or windows: score overlapping windows and keep the best.",
    )
    window_overlap: int = Field(
        default=32, ge=0, description="Tokens shared by consecutive windows (capped at half a window)."
    )
    max_windows_per_doc: int | None = Field(
        default=10,
        ge=1,
        validation_alias=AliasChoices("max_windows_per_doc", "max_chunks_per_doc"),
        description="At most this many windows per document; the rest is not read "
        "(formerly max_chunks_per_doc, still accepted).",
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str | None) -> str | None:
        if value is None:
            return None
        device = value.strip().lower()
        if not _DEVICE.fullmatch(device):
            raise ValueError(f"{value!r} is not a device; use one of {list(DEVICES)} (None = auto)")
        return device

    @field_validator("model")
    @classmethod
    def _local_path_exists(cls, model: str | None) -> str | None:
        if model is not None and _PATH_LIKE.search(model) and not Path(model).expanduser().exists():
            raise ValueError(f"no such local folder {model!r} (a Hub id reads 'name' or 'organisation/name')")
        return model

    @model_validator(mode="after")
    def _precision_fits_backend(self) -> LocalRerankerConfig:
        allowed = BACKEND_PRECISIONS[self.backend]
        if self.dtype not in allowed:
            raise ValueError(
                f"dtype={self.dtype!r} is not available with backend={self.backend!r}; use one of {allowed}"
            )
        return self
