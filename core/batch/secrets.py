"""Keys in a spec, kept out of what Ray ships and logs.

Ray writes a task's ``runtime_env`` (its ``env_vars`` included) in clear to its logs and shows it on
the dashboard, and pickles constructor arguments; so a key never travels in either. A spec sent to
Ray actors carries masked keys; each actor reads the key from its process environment: the
provider's own variable (``CO_API_KEY``...) set on the Ray nodes, or, for a local Ray this library
starts, a private variable the workers inherit from the driver at start-up.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from core.secrets import MASKED_SECRET, is_secret

#: Prefix of the private variables that carry a spec's keys to a local Ray's workers.
ENV_PREFIX = "RERANK_LAYER_SECRET_"

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class SecretRef:
    """Where a key sat in the spec and the variable it travels in."""

    path: Path
    env: str


def split_secrets(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[SecretRef]]:
    """A copy of ``spec`` with every key masked, the keys by variable name, and where each goes back.

    A key is what :func:`core.secrets.is_secret` says (``api_key`` at any depth, or a SecretStr).
    """
    secrets: dict[str, str] = {}
    refs: list[SecretRef] = []

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                secret = item.get_secret_value() if isinstance(item, SecretStr) else item
                if is_secret(key, item) and isinstance(secret, str) and secret and secret != MASKED_SECRET:
                    env = ENV_PREFIX + hashlib.sha256(repr((*path, key)).encode()).hexdigest()[:12].upper()
                    secrets[env] = secret
                    refs.append(SecretRef((*path, key), env))
                    out[key] = MASKED_SECRET
                else:
                    out[key] = walk(item, (*path, key))
            return out
        if isinstance(value, (list, tuple)):
            return [walk(item, (*path, i)) for i, item in enumerate(value)]
        if isinstance(value, SecretStr):
            return MASKED_SECRET
        return value

    return walk(spec, ()), secrets, refs


def restore_secrets(
    spec: Mapping[str, Any], refs: list[SecretRef], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``spec`` with each key read back from its variable; a variable not set leaves the mask.

    A masked key is dropped by ``create_reranker``, and the provider then reads its own variable.
    """
    env = os.environ if env is None else env
    out: dict[str, Any] = _copy(spec)
    for ref in refs:
        value = env.get(ref.env)
        if not value:
            continue
        target: Any = out
        for step in ref.path[:-1]:
            target = target[step]
        target[ref.path[-1]] = value
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@contextmanager
def exported(secrets: Mapping[str, str]) -> Iterator[None]:
    """Set ``secrets`` in this process's environment for the block (processes started in it inherit them)."""
    saved = {name: os.environ.get(name) for name in secrets}
    os.environ.update(secrets)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
