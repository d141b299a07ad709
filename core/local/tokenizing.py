"""A tokenizer safe to share between threads."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any


class LockedTokenizer:
    """Proxies a transformers tokenizer, one call at a time.

    A fast tokenizer reconfigures its Rust object (truncation, padding) on every call, and two
    threads calling it at once fail with "Already borrowed"; a shared model needs this lock.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.inner = tokenizer
        self._lock = threading.RLock()

    def _locked(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return function(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._locked(self.inner, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        """Attributes as they are; methods (which may touch the Rust object) under the lock."""
        value = getattr(self.inner, name)
        return functools.partial(self._locked, value) if callable(value) else value


def pad_values(tokenizer: Any) -> dict[str, int]:
    """The value each input is padded with (attention masks pad with 0)."""
    return {
        "input_ids": int(tokenizer.pad_token_id or 0),
        "token_type_ids": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
    }
