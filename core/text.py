"""Input validation and text extraction, shared by every reranker and adapter."""

from __future__ import annotations

import logging
import math
import re
import weakref
from collections.abc import Sequence
from typing import Any

from core.errors import InvalidInputError

logger = logging.getLogger("rerank_layer")

#: Keys tried in order when no ``text_key`` is configured (Mem0's order, then LangChain's name).
DEFAULT_TEXT_KEYS: tuple[str, ...] = ("memory", "text", "content", "page_content")

#: Replaces a lone surrogate: a code point no encoder (UTF-8 JSON, tokenizers) accepts.
REPLACEMENT_CHARACTER = "\ufffd"

Document = dict[str, Any] | str

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Rerankers already warned about dicts without a text key (each is warned once).
_warned_owners: weakref.WeakSet[Any] = weakref.WeakSet()


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds surrogate code points (not valid Unicode text on its own)."""
    return _SURROGATE.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` with surrogate pairs joined into their character and each lone surrogate made U+FFFD."""
    if not has_surrogates(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def validate_query(query: object) -> str:
    """Return ``query`` if it is a non-blank string of valid Unicode, else raise naming the field."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError("query must not be blank")
    surrogate = _SURROGATE.search(query)
    if surrogate is not None:
        raise InvalidInputError(
            f"query holds a surrogate {surrogate.group()!r} at position {surrogate.start()} (invalid "
            "Unicode, e.g. bytes decoded with errors='surrogateescape'); decode it properly or pass "
            "it through core.text.clean_text first"
        )
    return query


def validate_top_k(top_k: object, field: str = "top_k") -> int | None:
    """Return ``top_k`` if it is None or an int >= 0, else raise naming the field."""
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise InvalidInputError(f"{field} must be an integer >= 0 or None, got {top_k!r}")
    if top_k < 0:
        raise InvalidInputError(f"{field} must be >= 0, got {top_k}")
    return top_k


def validate_score_threshold(value: object, field: str = "score_threshold") -> float | None:
    """Return ``value`` as a float if it is None or a finite number, else raise naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{field} must be a finite number or None, got {value!r}")
    return float(value)


def validate_documents(documents: object) -> Sequence[Any]:
    """Return ``documents`` if it is a list or tuple, else raise naming the field."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, (list, tuple)):
        raise InvalidInputError(f"documents must be a list, got {type(documents).__name__}")
    return documents


def validate_texts(texts: object, field: str = "texts") -> list[str]:
    """``texts`` as a list of strings ready to score, else raise naming the offending item.

    A text holding lone surrogates (invalid Unicode, which no model or API accepts) is scored with
    each one replaced by U+FFFD, and a warning names it; the other texts are untouched.
    """
    items = validate_documents(texts)
    out: list[str] = []
    cleaned: list[int] = []
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(f"{field}[{i}] must be a string, got {type(text).__name__}")
        clean = clean_text(text)
        if clean is not text:
            cleaned.append(i)
        out.append(clean)
    if cleaned:
        logger.warning(
            "%s%s held lone surrogates (invalid Unicode); scored with U+FFFD in their place",
            field,
            cleaned if len(cleaned) > 1 else f"[{cleaned[0]}]",
        )
    return out


def _text_key_of(doc: dict[str, Any], index: int, text_key: str | None) -> str | None:
    if text_key is not None:
        if text_key not in doc:
            raise InvalidInputError(f"documents[{index}] has no key {text_key!r} (text_key)")
        return text_key
    return next((k for k in DEFAULT_TEXT_KEYS if k in doc), None)


def extract_text(doc: object, index: int, text_key: str | None = None) -> str:
    """The text of one document: ``text_key``, else memory/text/content/page_content, else ``str(doc)``."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"documents[{index}] must be a dict or a string, got {type(doc).__name__}")
    key = _text_key_of(doc, index, text_key)
    if key is None:
        return str(doc)
    value = doc[key]
    if not isinstance(value, str):
        raise InvalidInputError(f"documents[{index}][{key!r}] must be a string, got {type(value).__name__}")
    return value


def extract_texts(
    documents: Sequence[Any], text_key: str | None = None, *, owner: object = None
) -> list[str]:
    """Texts of all documents, validated.

    A dict with none of the text keys is scored as ``str(doc)``, with a warning on the
    ``rerank_layer`` logger: once per ``owner`` (the reranker), or on every call without one.
    """
    texts = [extract_text(doc, i, text_key) for i, doc in enumerate(documents)]
    if text_key is None:
        keyless = [
            i
            for i, doc in enumerate(documents)
            if isinstance(doc, dict) and _text_key_of(doc, i, None) is None
        ]
        if keyless and (owner is None or owner not in _warned_owners):
            if owner is not None:
                _warned_owners.add(owner)
            logger.warning(
                "documents%s: none of the text keys %s, so str(document) is scored; set text_key to the "
                "key holding the text (warned once per reranker)",
                keyless if len(keyless) > 1 else f"[{keyless[0]}]",
                list(DEFAULT_TEXT_KEYS),
            )
    return texts
