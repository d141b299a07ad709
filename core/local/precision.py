"""Which precision ``dtype="auto"`` means on this machine, and what the CPU can do fast."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

from core.deps import require
from core.local.options import LOCAL


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True if the CPU computes bfloat16 natively (x86 AVX512-BF16 or AMX, Arm BF16).

    Without it PyTorch emulates bf16 and runs slower than float32, so ``auto`` keeps float32.
    """
    torch = require("torch", extra="local", provider=LOCAL)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if any(getattr(torch.cpu, name, lambda: False)() for name in probes):
        return True
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in _cpuinfo_flags()
    return False


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def resolve_precision(requested: str, device: str, backend: str) -> str:
    """The concrete precision for ``requested`` ("auto" or a name) on ``device`` with ``backend``.

    auto: float32 with onnx (int8 is opt-in); float16 on CUDA; bfloat16 on a CPU with native
    bf16; float32 otherwise (other CPUs, MPS).
    """
    if requested != "auto":
        return requested
    if backend == "onnx":
        return "float32"
    if device.startswith("cuda"):
        return "float16"
    if device == "cpu" and cpu_has_native_bf16():
        return "bfloat16"
    return "float32"
