"""What a checkpoint is, read from its files before any weight is loaded.

``config.json`` (architectures, model_type) and sentence-transformers' ``modules.json`` decide:
an encoder with a classification head is a cross-encoder, a decoder with one (``Qwen3ForSequence
Classification`` conversions) a decoder classifier, a causal LM (``*ForCausalLM``, or a
sentence-transformers ``LogitScore`` cross-encoder) an LLM reranker scored from its yes/no logits,
anything else (a pooled sentence-embedding model, a bare encoder) a bi-encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.deps import require
from core.errors import ConfigError
from core.local.options import LOCAL

Kind = Literal["cross_encoder", "decoder_classifier", "causal_lm", "bi_encoder"]

#: Architecture name endings of causal language models.
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@dataclass(frozen=True)
class Checkpoint:
    """The facts about a checkpoint that decide how it is loaded and scored."""

    name: str
    kind: Kind
    architectures: tuple[str, ...]
    model_type: str | None
    #: Token ids a sentence-transformers ``LogitScore`` module declares (None without one).
    true_token_id: int | None = None
    false_token_id: int | None = None

    @property
    def is_decoder(self) -> bool:
        """A decoder-only model (scored at its last token, left-padded)."""
        return self.kind in ("decoder_classifier", "causal_lm")

    @property
    def names(self) -> tuple[str, ...]:
        """Where a family name is looked for, most specific first: folder name, full name, architectures."""
        return (Path(self.name).name, self.name, *self.architectures)


def _read_json(model: str, filename: str) -> Any:
    """``filename`` of a local folder or a cached hub model, parsed; None when it has none."""
    folder = Path(model)
    if folder.is_dir():
        path = folder / filename
        return json.loads(path.read_text()) if path.is_file() else None
    hub = require("transformers.utils.hub", extra="local", provider=LOCAL)
    found = hub.cached_file(
        model,
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return json.loads(Path(found).read_text()) if found else None


def _config(model: str, trust_remote_code: bool) -> dict[str, Any]:
    try:
        raw = _read_json(model, "config.json")
        if raw is None:
            transformers = require("transformers", extra="local", provider=LOCAL)
            raw = transformers.AutoConfig.from_pretrained(
                model, trust_remote_code=trust_remote_code
            ).to_dict()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot load model {model!r}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"cannot load model {model!r}: config.json is not an object")
    return raw


def _is_decoder_type(model_type: str | None) -> bool:
    """A model type transformers knows only as a causal LM (not also as a masked LM, as BERT is)."""
    if not model_type:
        return False
    auto = require("transformers.models.auto.modeling_auto", extra="local", provider=LOCAL)
    return (
        model_type in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def _logit_score(model: str, modules: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The config of a sentence-transformers ``LogitScore`` module, if the checkpoint has one."""
    for module in modules:
        if str(module.get("type", "")).endswith("LogitScore"):
            found = _read_json(model, f"{module.get('path', '')}/config.json".lstrip("/"))
            return found if isinstance(found, dict) else {}
    return None


def inspect_checkpoint(model: str, trust_remote_code: bool = False) -> Checkpoint:
    """Read ``model``'s config (and sentence-transformers modules) and say what kind of model it is."""
    config = _config(model, trust_remote_code)
    architectures = tuple(str(a) for a in config.get("architectures") or ())
    model_type = config.get("model_type")
    modules = _read_json(model, "modules.json") or []
    modules = modules if isinstance(modules, list) else []
    logit_score = _logit_score(model, modules)

    def made(kind: Kind, **ids: int | None) -> Checkpoint:
        return Checkpoint(model, kind, architectures, model_type, **ids)

    if logit_score is not None:
        true_id, false_id = logit_score.get("true_token_id"), logit_score.get("false_token_id")
        return made("causal_lm", true_token_id=true_id, false_token_id=false_id)
    if any("Pooling" in str(m.get("type", "")) for m in modules):
        return made("bi_encoder")
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return made("decoder_classifier" if _is_decoder_type(model_type) else "cross_encoder")
    if any(a.endswith(CAUSAL_SUFFIXES) for a in architectures):
        return made("causal_lm")
    return made("bi_encoder")


def refuse_missing_weights(model: str, loading_info: dict[str, Any], model_class: str) -> None:
    """Raise if ``model_class`` found weights missing from ``model`` (transformers would use random ones).

    That is what happens when a checkpoint without a classification head (a causal LM, a bare
    encoder) is loaded for sequence classification: the head is freshly initialised and every
    score it gives is noise.
    """
    missing = sorted(str(key) for key in loading_info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ConfigError(
            f"model {model!r} has no trained weights for {shown}: loaded as {model_class} they would be "
            f"randomly initialised and every score would be noise. Use a checkpoint with a trained "
            f"head, or an LLM reranker family (config family / prompt_template) for a causal LM."
        )
