"""Reranker specs: the dict ``create_reranker`` takes, from a string, a dict, a file or command-line flags.

A spec is ``{"provider": ..., "config": {...}, "fallbacks": [...]}``. Anywhere a spec is accepted, a
string works too: ``"cohere"`` or ``"provider:model"`` (``"huggingface:BAAI/bge-reranker-base"``; the model
may itself hold ``/`` and ``:``), and so does Mem0's wrapper ``{"reranker": {...}}``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.deps import require
from core.errors import ConfigError

#: The reranker used when none is given: the packaged all-MiniLM-L6-v2, offline.
DEFAULT_SPEC: dict[str, Any] = {"provider": "sentence_transformer", "config": {"model": "embedded"}}

#: File suffixes read as spec files by :func:`resolve_spec_argument`.
SPEC_FILE_SUFFIXES = (".json", ".yaml", ".yml")

Spec = str | Mapping[str, Any]


def parse_spec(spec: object) -> dict[str, Any]:
    """A spec dict from ``"provider"``, ``"provider:model"``, a spec mapping or Mem0's ``{"reranker": ...}``.

    The result is a new dict (the caller's mapping is not changed); its keys are checked by
    ``create_reranker``.
    """
    if isinstance(spec, str):
        text = spec.strip()
        provider, sep, model = text.partition(":")
        if not provider.strip():
            raise ConfigError(f"reranker spec string must start with a provider name, got {spec!r}")
        if sep and not model.strip():
            raise ConfigError(f"reranker spec {spec!r} has an empty model after ':'")
        parsed: dict[str, Any] = {"provider": provider.strip()}
        if sep:
            parsed["config"] = {"model": model.strip()}
        return parsed
    if isinstance(spec, Mapping):
        if set(spec) == {"reranker"}:
            return parse_spec(spec["reranker"])
        return dict(spec)
    raise ConfigError(
        f"reranker spec must be a dict or a string like 'provider' or 'provider:model', "
        f"got {type(spec).__name__}"
    )


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """A spec from a ``.json``, ``.yaml`` or ``.yml`` file (a spec mapping, Mem0's wrapper or a string)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read reranker spec {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            yaml = require("yaml", extra="eval", provider="spec file")
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError both carry the position
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from exc
    if not isinstance(data, (Mapping, str)):
        raise ConfigError(f"{path}: a reranker spec must be a mapping, got {type(data).__name__}")
    return parse_spec(data)


def resolve_spec_argument(value: str) -> dict[str, Any]:
    """A ``--reranker`` value: a spec file when it names one (or ends in .json, .yaml), else a spec string."""
    path = Path(value)
    if path.suffix.lower() in SPEC_FILE_SUFFIXES or path.is_file():
        return load_spec_file(path)
    return parse_spec(value)


def _parse_setting(setting: str) -> tuple[str, Any]:
    key, sep, raw = setting.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE, got {setting!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def build_spec(
    spec: str | Path | None = None,
    provider: str | None = None,
    model: str | None = None,
    settings: Sequence[str] = (),
) -> dict[str, Any]:
    """A spec from a file or spec string, or a provider name, plus ``model`` and ``KEY=VALUE`` settings.

    Values of settings are read as JSON when they parse (``top_k=5``, ``normalize=false``), else
    as strings. With nothing given the result is :data:`DEFAULT_SPEC`.
    """
    if spec is not None and provider is not None:
        raise ConfigError("give either a reranker spec (--reranker) or a provider, not both")
    if spec is not None:
        built = load_spec_file(spec) if isinstance(spec, Path) else resolve_spec_argument(spec)
    elif provider is not None:
        built = {"provider": provider}
    else:
        built = copy.deepcopy(DEFAULT_SPEC)
    config = dict(built.get("config") or {})
    if model is not None:
        config["model"] = model
    for setting in settings:
        key, value = _parse_setting(setting)
        config[key] = value
    if config:
        built["config"] = config
    return built
