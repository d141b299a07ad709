"""Several ``(query, texts)`` requests scored together: all their pairs in one set of length-sorted batches.

A runtime that can tokenise pairs of *different* queries (``encode_pairs``) and score tokenised pairs
(``score_features``) gets this for free: the pairs of every request are sorted by length together, so
a batch may hold pairs of several queries, and each request gets back exactly the scores it would get
alone (the padding of a pair's batch does not change its score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from core.local.batching import Features, progress_bar
from core.local.options import LocalRerankerConfig
from core.local.windows import best_per_document, room_beside_query, split_documents
from core.results import Scores

#: One request: a query and the texts to score against it.
Request = tuple[str, Sequence[str]]


class PairRuntime(Protocol):
    """What a local runtime offers to score (query, text) pairs of different queries in shared batches."""

    @property
    def tokenizer(self) -> Any:
        """The (fast) tokenizer, for document windows."""

    def max_length(self, requested: int | None) -> int:
        """``requested`` tokens per pair, capped at the model's limit."""

    def encode_pairs(self, queries: Sequence[str], texts: Sequence[str], max_length: int) -> Features:
        """Token ids of the pairs ``(queries[i], texts[i])``, truncated, unpadded."""

    def score_features(self, features: Features, batch_size: int, progress: Any) -> list[float]:
        """One raw score per tokenised pair, in input order."""


def score_requests(
    runtime: PairRuntime,
    requests: Sequence[Request],
    config: LocalRerankerConfig,
    max_length: int | None,
) -> list[list[float]]:
    """Raw scores of every request, one list each; usage ``total_tokens`` counts the pairs' tokens.

    With ``long_documents="windows"`` each text scores its best window, as for a single request.
    """
    length = runtime.max_length(max_length)
    queries: list[str] = []
    texts: list[str] = []
    owners: list[list[int]] = []  # per request: the document each of its scored texts belongs to
    for query, docs in requests:
        if config.long_documents == "truncate":
            piece_texts, piece_owners = list(docs), list(range(len(docs)))
        else:
            room = room_beside_query(runtime.tokenizer, query, length)
            plan = split_documents(
                runtime.tokenizer, docs, room, config.window_overlap, config.max_windows_per_doc
            )
            piece_texts, piece_owners = plan.texts, plan.owners
        queries.extend([query] * len(piece_texts))
        texts.extend(piece_texts)
        owners.append(piece_owners)
    features = runtime.encode_pairs(queries, texts, length)
    scores = runtime.score_features(features, config.batch_size, progress_bar(config.show_progress_bar))
    out: list[list[float]] = []
    start = 0
    for (_, docs), piece_owners in zip(requests, owners, strict=True):
        end = start + len(piece_owners)
        tokens = sum(len(ids) for ids in features["input_ids"][start:end])
        values = (
            scores[start:end]
            if config.long_documents == "truncate"
            else best_per_document(scores[start:end], piece_owners, len(docs))
        )
        out.append(Scores(values, usage={"total_tokens": float(tokens)}))
        start = end
    return out


def shared_batches(
    encoder: object, requests: Sequence[Request], config: LocalRerankerConfig, max_length: int | None
) -> list[list[float]] | None:
    """:func:`score_requests` when ``encoder`` is a cross-encoder runtime (pairs of every request in
    shared batches); None for models that score one request at a time."""
    from core.local.cross_encoder import CrossEncoderRuntime  # it imports this module

    if isinstance(encoder, CrossEncoderRuntime):
        return score_requests(encoder, requests, config, max_length)
    return None
