"""CPU thread counts: use the cores this process may run on, and no more."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

from core.deps import require
from core.errors import ConfigError
from core.local.options import LOCAL


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    return max(1, min(count, _cgroup_quota() or count))


def _cgroup_quota() -> int | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def thread_count(requested: int | None) -> int:
    """Threads to run a model with: ``requested``, else every available CPU."""
    return requested if requested is not None else available_cpus()


def apply_torch_threads(requested: int | None) -> int:
    """Set PyTorch's (process-wide) intra-op threads: ``requested``, or cap it at the available CPUs.

    With no request, a thread count PyTorch already chose below the CPU count is left alone.
    """
    torch = require("torch", extra="local", provider=LOCAL)
    current = int(torch.get_num_threads())
    target = requested if requested is not None else min(current, available_cpus())
    if target != current:
        torch.set_num_threads(target)
    return target


#: The num_threads a reranker explicitly set on PyTorch (process-wide), while it is in force.
_torch_claim: int | None = None
_claim_lock = threading.Lock()


def claim_torch_threads(requested: int | None, model: str) -> None:
    """Make an explicit ``num_threads`` take effect on PyTorch, or refuse it if another one is in force.

    PyTorch's thread count is process-wide: a reranker that set one (and whose setting still holds)
    is not silently overridden by another with a different count. ``requested`` None accepts any.
    """
    global _torch_claim
    if requested is None:
        return
    torch = require("torch", extra="local", provider=LOCAL)
    with _claim_lock:
        current = int(torch.get_num_threads())
        if _torch_claim is not None and _torch_claim != requested and current == _torch_claim:
            raise ConfigError(
                f"num_threads={requested} for model {model!r}: another reranker in this process runs PyTorch "
                f"with num_threads={_torch_claim}, and PyTorch's thread count is process-wide. Rerankers in "
                f"one process must agree on num_threads (or leave it None), or call core.clear_model_cache()."
            )
        if current != requested:
            torch.set_num_threads(requested)
        _torch_claim = requested


def check_session_threads(requested: int | None, session_threads: int | None, model: str) -> None:
    """Refuse an explicit ``num_threads`` that a loaded ONNX Runtime session (fixed count) would ignore."""
    if requested is not None and session_threads is not None and session_threads != requested:
        raise ConfigError(
            f"num_threads={requested}: model {model!r} is already loaded in this process with an ONNX "
            f"Runtime session of {session_threads} threads, which cannot change. Use "
            f"num_threads={session_threads}, or call core.clear_model_cache() first."
        )


def release_thread_claims() -> None:
    """Forget the PyTorch thread count claimed by rerankers (the model cache was cleared)."""
    global _torch_claim
    with _claim_lock:
        _torch_claim = None
