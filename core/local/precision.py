"""What ``backend="auto"`` and ``dtype="auto"`` mean on this machine, and what the CPU can do fast."""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
from pathlib import Path

from core.deps import require
from core.errors import ConfigError
from core.local.models import resolve_device
from core.local.options import LOCAL, LocalRerankerConfig

#: CPU flags (as /proc/cpuinfo names them) that compute bfloat16 natively.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
#: CPU flags of int8 dot-product instructions (x86 VNNI / AMX, Arm dot product / i8mm).
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"})
#: The Python packages each optional backend (and static int8) needs.
BACKEND_PACKAGES = {
    "onnx": ("onnxruntime",),
    "openvino": ("openvino",),
    "openvino-int8": ("openvino", "nncf"),
}


#: Environment variable that replaces the detected CPU flags (space-separated), e.g. to emulate an
#: AVX2-only CPU together with ``ONEDNN_MAX_CPU_ISA=AVX2`` (benchmarks/bench_cpu_features.py).
CPU_FLAGS_ENV = "RERANK_LAYER_CPU_FLAGS"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    override = os.environ.get(CPU_FLAGS_ENV)
    if override is not None:
        return frozenset(override.split())
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True if the CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX, Arm BF16).

    Without it PyTorch emulates bf16 and runs slower than float32, so ``auto`` keeps float32.
    """
    if cpu_flags() & BF16_FLAGS:
        return True
    if platform.system() == "Linux" or CPU_FLAGS_ENV in os.environ:
        return False  # the flags above are complete there; no need to import torch to ask
    torch = require("torch", extra="local", provider=LOCAL)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def installed(backend: str) -> bool:
    """True if the packages ``backend`` (a key of :data:`BACKEND_PACKAGES`) needs are importable."""
    return all(importlib.util.find_spec(name) is not None for name in BACKEND_PACKAGES[backend])


def resolve_precision(
    requested: str, device: str, backend: str, features: frozenset[str] | None = None
) -> str:
    """The concrete precision for ``requested`` ("auto" or a name) on ``device`` with ``backend``.

    auto: with openvino, int8 on a CPU with int8 dot products (VNNI, AMX, Arm dot product) when
    NNCF is installed, else bfloat16 on a CPU with native bf16, else float32; with onnx, float32
    (int8 is opt-in); with torch, float16 on CUDA, bfloat16 on a CPU with native bf16, float32
    otherwise (other CPUs, MPS). ``features`` (CPU flags) defaults to this CPU's.
    """
    if requested != "auto":
        return requested
    flags = cpu_flags() if features is None else features
    bf16 = bool(flags & BF16_FLAGS) if features is not None else cpu_has_native_bf16()
    if backend == "onnx":
        return "float32"
    if backend == "openvino":
        if flags & INT8_FLAGS and installed("openvino-int8"):
            return "int8"
        return "bfloat16" if bf16 else "float32"
    if device.startswith("cuda"):
        return "float16"
    if device == "cpu" and bf16:
        return "bfloat16"
    return "float32"


def resolve_backend(requested: str, device: str, dtype: str, kind: str) -> str:
    """The backend for ``requested`` ("auto" or a name), ``device``, ``dtype`` and model ``kind``.

    auto: with ``dtype`` "auto" or "int8", a cross-encoder on the CPU runs on OpenVINO when it is
    installed (int8 also needs NNCF); int8 otherwise goes to ONNX Runtime; everything else,
    explicit float precisions included, runs on PyTorch (the reference numerics).
    """
    if requested != "auto":
        return requested
    wants_openvino = device == "cpu" and kind == "cross_encoder" and dtype in ("auto", "int8")
    if wants_openvino and installed("openvino-int8" if dtype == "int8" else "openvino"):
        return "openvino"
    return "onnx" if dtype == "int8" else "torch"


def resolve_runtime(config: LocalRerankerConfig, kind: str) -> tuple[str, str, str]:
    """(device, backend, precision) for a local reranker's config and model ``kind``."""
    device = resolve_device(config.device)
    if config.backend == "openvino":
        if config.device not in (None, "auto", "cpu"):
            raise ConfigError(
                f"device={config.device!r}: backend='openvino' runs on the CPU; use device='cpu'"
            )
        device = "cpu"
    backend = resolve_backend(config.backend, device, config.dtype, kind)
    return device, backend, resolve_precision(config.dtype, device, backend)
