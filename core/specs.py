"""Reranker specs from a JSON/YAML file and command-line flags."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.deps import require
from core.errors import ConfigError

#: The reranker used when none is given: the packaged all-MiniLM-L6-v2, offline.
DEFAULT_SPEC: dict[str, Any] = {"provider": "sentence_transformer", "config": {"model": "embedded"}}


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """A spec from a ``.json``, ``.yaml`` or ``.yml`` file.

    The file holds ``{"provider", "config", "fallbacks"}``, or Mem0's ``{"reranker": {...}}``.
    """
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
    if isinstance(data, dict) and set(data) == {"reranker"}:
        data = data["reranker"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a reranker spec must be a mapping, got {type(data).__name__}")
    return data


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
    spec_file: str | Path | None = None,
    provider: str | None = None,
    model: str | None = None,
    settings: Sequence[str] = (),
) -> dict[str, Any]:
    """A spec from a file or a provider name, plus ``model`` and ``KEY=VALUE`` config settings.

    Values of settings are read as JSON when they parse (``top_k=5``, ``normalize=false``), else
    as strings. With nothing given the result is :data:`DEFAULT_SPEC`.
    """
    if spec_file is not None and provider is not None:
        raise ConfigError("give either a reranker spec file or a provider, not both")
    if spec_file is not None:
        spec = load_spec_file(spec_file)
    elif provider is not None:
        spec = {"provider": provider}
    else:
        spec = copy.deepcopy(DEFAULT_SPEC)
    config = dict(spec.get("config") or {})
    if model is not None:
        config["model"] = model
    for setting in settings:
        key, value = _parse_setting(setting)
        config[key] = value
    if config:
        spec["config"] = config
    return spec
