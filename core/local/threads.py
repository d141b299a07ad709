"""CPU thread counts: use the cores this process may run on, and no more."""

from __future__ import annotations

import math
import os
from pathlib import Path

from core.deps import require
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
