"""``score_many``: several queries' pairs in shared batches, each request's scores as if scored alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import create_reranker
from core.base import BaseReranker
from core.local.cross_encoder import load_cross_encoder
from tests.support.model_factory import QUERY, TEXTS, WORDS
from tests.support.toy_rerankers import OverlapReranker

REQUESTS = [
    (QUERY, TEXTS),
    ("python code language", TEXTS[2:5]),
    ("river weather rain sun", [" ".join(WORDS[i : i + 30]) for i in range(0, 60, 7)]),
    ("tea", ["coffee and tea", "tea"]),
]


def local(provider: str, path: Path, **config: object) -> BaseReranker:
    return create_reranker(
        {"provider": provider, "config": {"model": str(path), "dtype": "float32", **config}}
    )


@pytest.mark.parametrize("provider", ["huggingface", "sentence_transformer"])
def test_each_request_gets_its_own_scores(tiny_cross_encoder: Path, provider: str) -> None:
    reranker = local(provider, tiny_cross_encoder, batch_size=4)
    together = reranker.score_many(REQUESTS)
    assert [len(s) for s in together] == [len(texts) for _, texts in REQUESTS]
    for (query, texts), scores in zip(REQUESTS, together, strict=True):
        np.testing.assert_allclose(scores, reranker.score(query, texts), rtol=0, atol=1e-5)


def test_batches_mix_queries_and_count_tokens(tiny_cross_encoder: Path) -> None:
    reranker = local("huggingface", tiny_cross_encoder, batch_size=64)
    runtime = load_cross_encoder(reranker.config)
    widths: list[int] = []
    original = runtime.forward
    runtime.forward = lambda batch: widths.append(len(batch["input_ids"])) or original(batch)
    try:
        together = reranker.score_many(REQUESTS)
    finally:
        runtime.forward = original
    pairs = sum(len(texts) for _, texts in REQUESTS)
    assert widths == [pairs]  # one forward pass held every request's pairs
    for (query, texts), scores in zip(REQUESTS, together, strict=True):
        ids = runtime.encode(query, texts, runtime.max_length(reranker.config.max_length))["input_ids"]
        assert scores.usage == {"total_tokens": float(sum(len(row) for row in ids))}


def test_windows_score_each_document_by_its_best_window(tiny_cross_encoder: Path) -> None:
    reranker = local("huggingface", tiny_cross_encoder, long_documents="windows", max_length=24)
    requests = [(QUERY, [" ".join(WORDS[:50]), "paris"]), ("cat dog", [" ".join(WORDS[20:90]), "cat"])]
    for (query, texts), scores in zip(requests, reranker.score_many(requests), strict=True):
        np.testing.assert_allclose(scores, reranker.score(query, texts), rtol=0, atol=1e-5)


def test_bi_encoder_and_other_rerankers_score_in_turn(minilm_path: Path) -> None:
    bi = create_reranker({"provider": "sentence_transformer", "config": {"model": "embedded"}})
    for (query, texts), scores in zip(REQUESTS[:2], bi.score_many(REQUESTS[:2]), strict=True):
        np.testing.assert_allclose(scores, bi.score(query, texts), rtol=0, atol=1e-6)
    toy = OverlapReranker()
    assert toy.score_many(REQUESTS) == [toy.score(q, t) for q, t in REQUESTS]
    assert toy.calls == 2 * len(REQUESTS)
