"""Documents in and ranked results out for one-off reranking (the ``rerank-layer rerank`` command)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from core.errors import InvalidInputError

InputFormat = Literal["auto", "json", "jsonl", "lines"]
INPUT_FORMATS: tuple[InputFormat, ...] = ("auto", "json", "jsonl", "lines")

Document = dict[str, Any] | str


def _check_items(items: Sequence[Any], source: str) -> list[Document]:
    for i, item in enumerate(items):
        if not isinstance(item, (dict, str)):
            raise InvalidInputError(f"{source}[{i}] must be a string or an object, got {type(item).__name__}")
    return list(items)


def _json_lines(text: str) -> list[Any]:
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"documents line {number}: not valid JSON ({exc.msg})") from exc
    return items


def _looks_like_jsonl(text: str) -> bool:
    try:
        items = _json_lines(text)
    except InvalidInputError:
        return False
    return bool(items) and all(isinstance(item, (dict, str)) for item in items)


def read_documents(text: str, input_format: InputFormat = "auto") -> list[Document]:
    """Parse documents: a JSON array, JSON lines (objects or strings), or one plain-text document per line.

    ``auto`` takes a JSON array if the text is one, else JSON lines if every line is a JSON
    object or string, else plain lines. Blank lines are skipped.
    """
    if input_format not in INPUT_FORMATS:
        raise InvalidInputError(f"input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    stripped = text.strip()
    if input_format == "json" or (input_format == "auto" and stripped.startswith("[")):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            if input_format == "json":
                raise InvalidInputError(f"documents: not a valid JSON array ({exc.msg})") from exc
        else:
            if not isinstance(data, list):
                raise InvalidInputError(f"documents: expected a JSON array, got {type(data).__name__}")
            return _check_items(data, "documents")
    if input_format == "jsonl" or (input_format == "auto" and _looks_like_jsonl(stripped)):
        return _check_items(_json_lines(stripped), "documents")
    return [line for line in text.splitlines() if line.strip()]


def _text_of(row: dict[str, Any]) -> str:
    for key in ("memory", "text", "content"):
        if isinstance(row.get(key), str):
            return str(row[key])
    return json.dumps({k: v for k, v in row.items() if not k.startswith("rerank_")}, ensure_ascii=False)


def format_ranked_table(rows: Sequence[dict[str, Any]], text_width: int = 80) -> str:
    """A plain-text table of reranked documents: rank, score, id (when documents have one), text."""
    with_ids = any("id" in row for row in rows)
    header = f"{'rank':>4}  {'score':>6}  " + ("id" + " " * 10 if with_ids else "") + "text"
    lines = [header, "-" * len(header.rstrip()) + "-" * (text_width - 4)]
    for rank, row in enumerate(rows, 1):
        score = row.get("rerank_score")
        shown = "   n/a" if score is None else f"{score:6.3f}"
        doc_id = f"{str(row.get('id', ''))[:11]:<12}" if with_ids else ""
        text = " ".join(_text_of(row).split())
        if len(text) > text_width:
            text = text[: text_width - 3] + "..."
        lines.append(f"{rank:>4}  {shown}  {doc_id}{text}")
    return "\n".join(lines)


def ranked_json(rows: Sequence[dict[str, Any]]) -> str:
    """The reranked documents as a JSON array (each with ``rerank_score`` and ``rerank_raw_score``)."""
    return json.dumps(list(rows), indent=2, ensure_ascii=False)
