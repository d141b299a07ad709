"""Input validation and text extraction, shared by every reranker and adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import InvalidInputError

#: Keys tried in order when no ``text_key`` is configured (Mem0's order).
DEFAULT_TEXT_KEYS: tuple[str, ...] = ("memory", "text", "content")

Document = dict[str, Any] | str


def validate_query(query: object) -> str:
    """Return ``query`` if it is a non-blank string, else raise naming the field."""
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError("query must not be blank")
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


def validate_documents(documents: object) -> Sequence[Any]:
    """Return ``documents`` if it is a list or tuple, else raise naming the field."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, (list, tuple)):
        raise InvalidInputError(f"documents must be a list, got {type(documents).__name__}")
    return documents


def validate_texts(texts: object, field: str = "texts") -> list[str]:
    """Return ``texts`` as a list of strings, else raise naming the offending item."""
    items = validate_documents(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(f"{field}[{i}] must be a string, got {type(text).__name__}")
    return list(items)


def extract_text(doc: object, index: int, text_key: str | None = None) -> str:
    """The text of one document: ``text_key``, else memory/text/content, else ``str(doc)``."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"documents[{index}] must be a dict or a string, got {type(doc).__name__}")
    if text_key is not None:
        if text_key not in doc:
            raise InvalidInputError(f"documents[{index}] has no key {text_key!r} (text_key)")
        keys: tuple[str, ...] = (text_key,)
    else:
        keys = tuple(k for k in DEFAULT_TEXT_KEYS if k in doc)
    if not keys:
        return str(doc)
    value = doc[keys[0]]
    if not isinstance(value, str):
        raise InvalidInputError(
            f"documents[{index}][{keys[0]!r}] must be a string, got {type(value).__name__}"
        )
    return value


def extract_texts(documents: Sequence[Any], text_key: str | None = None) -> list[str]:
    """Texts of all documents, validated."""
    return [extract_text(doc, i, text_key) for i, doc in enumerate(documents)]
