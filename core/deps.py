"""Optional-dependency imports that name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from core.errors import MissingDependencyError


def require(module: str, *, extra: str, provider: str) -> ModuleType:
    """Import ``module`` or raise an error naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, provider) from exc
