"""Long documents as overlapping windows that fit beside the query; a document scores its best window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ConfigError


@dataclass(frozen=True)
class WindowPlan:
    """Texts to score and, for each, the position of the document it came from."""

    texts: list[str]
    owners: list[int]


def token_windows(
    length: int,
    size: int,
    overlap: int,
    max_windows: int | None = None,
    words: Sequence[int | None] | None = None,
) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of at most ``size`` tokens covering ``length`` tokens.

    Consecutive windows share ``overlap`` tokens (at most half a window); with ``words`` (the
    tokenizer's word ids) a window starts at the beginning of a word. Only the first
    ``max_windows`` windows are kept: text past them is not read.
    """
    overlap = min(overlap, size // 2)
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, length)
        spans.append((start, end))
        if end >= length or (max_windows is not None and len(spans) >= max_windows):
            return spans
        following = end - overlap
        if words is not None:
            following = _word_start(words, following)
        start = max(following, start + 1)


def split_documents(
    tokenizer: Any, texts: Sequence[str], room: int, overlap: int, max_windows: int | None
) -> WindowPlan:
    """Cut every text longer than ``room`` tokens into windows of at most ``room`` tokens.

    Windows are substrings of the original text cut at word starts (from the fast tokenizer's
    offsets), so each is tokenised again with the query exactly like a short document.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("long_documents='windows' needs a fast (Rust) tokenizer for token offsets")
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    plan = WindowPlan([], [])
    for doc, text in enumerate(texts):
        offsets = enc["offset_mapping"][doc]
        if len(offsets) <= room:
            plan.texts.append(text)
            plan.owners.append(doc)
            continue
        for start, end in token_windows(len(offsets), room, overlap, max_windows, enc.word_ids(doc)):
            plan.texts.append(text[offsets[start][0] : offsets[end - 1][1]])
            plan.owners.append(doc)
    return plan


def _word_start(words: Sequence[int | None], token: int) -> int:
    """``token`` moved back to the first token of its word."""
    while token > 0 and words[token] is not None and words[token - 1] == words[token]:
        token -= 1
    return token


def best_per_document(scores: Sequence[float], owners: Sequence[int], count: int) -> list[float]:
    """Each document's highest window score."""
    best = [float("-inf")] * count
    for score, doc in zip(scores, owners, strict=True):
        best[doc] = max(best[doc], score)
    return best


def room_beside_query(tokenizer: Any, query: str, max_length: int) -> int:
    """Document tokens that fit in ``max_length`` beside ``query`` and the special tokens.

    A long query never takes more than half: the pair's truncation then shortens the query.
    """
    query_tokens = len(tokenizer(query, add_special_tokens=False)["input_ids"])
    special = int(tokenizer.num_special_tokens_to_add(pair=True))
    return max(max_length - special - query_tokens, max_length // 2)


def room_alone(tokenizer: Any, max_length: int) -> int:
    """Tokens of a single text (bi-encoder) that fit in ``max_length`` with the special tokens."""
    return max(1, max_length - int(tokenizer.num_special_tokens_to_add(pair=False)))
