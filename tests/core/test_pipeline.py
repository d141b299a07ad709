"""The shared pipeline: validation, ordering, top_k, threshold, failure policy, fallbacks."""

from __future__ import annotations

import asyncio
import copy
import logging
import math

import pytest

from core import ConfigError, InvalidInputError, ProviderError, RerankerConfig, Scores
from tests.support.toy_rerankers import BrokenOutputReranker, FailingReranker, OverlapReranker

DOCS = [
    {"id": 1, "memory": "cats are small pets", "score": 0.9},
    {"id": 2, "text": "paris is the capital of france", "score": 0.8},
    {"id": 3, "content": "the capital of italy is rome", "score": 0.7},
    {"id": 4, "other": "no text field here at all", "score": 0.6},
]
QUERY = "what is the capital of france"


def test_rerank_orders_copies_and_adds_scores() -> None:
    docs = copy.deepcopy(DOCS)
    out = OverlapReranker().rerank(QUERY, docs)
    assert [d["id"] for d in out] == [2, 3, 1, 4]
    assert docs == DOCS, "caller's documents must not be mutated"
    assert all(o is not d for o in out for d in docs)
    for row in out:
        original = next(d for d in DOCS if d["id"] == row["id"])
        assert {k: row[k] for k in original} == original
        assert 0.0 <= row["rerank_score"] <= 1.0
    assert out[0]["rerank_score"] == pytest.approx(5 / 6)
    assert out[0]["rerank_raw_score"] == pytest.approx(5 / 6)
    assert out.ranking.provider == "overlap"
    assert out.error is None


def test_text_extraction_order_and_text_key() -> None:
    reranker = OverlapReranker()
    doc = {"memory": "alpha", "text": "beta", "content": "gamma"}
    assert reranker.rerank("alpha", [doc])[0]["rerank_score"] == 1.0
    assert reranker.rerank("beta", [{"text": "beta", "content": "gamma"}])[0]["rerank_score"] == 1.0
    keyed = OverlapReranker(text_key="body")
    out = keyed.rerank("delta", [{"body": "delta", "memory": "alpha"}])
    assert out[0]["rerank_score"] == 1.0
    with pytest.raises(InvalidInputError, match=r"documents\[0\] has no key 'body'"):
        keyed.rerank("delta", [{"memory": "alpha"}])


def test_string_documents_become_dicts() -> None:
    out = OverlapReranker().rerank("red apple", ["green pear", "red apple pie"])
    assert out[0] == {"text": "red apple pie", "rerank_score": 1.0, "rerank_raw_score": 1.0}
    assert out[1]["text"] == "green pear"


@pytest.mark.parametrize(
    ("query", "documents", "top_k", "message"),
    [
        ("", ["a"], None, "query must not be blank"),
        ("   ", ["a"], None, "query must not be blank"),
        (None, ["a"], None, "query must be a string"),
        ("q", "not a list", None, "documents must be a list"),
        ("q", ["a"], -1, "top_k must be >= 0"),
        ("q", ["a"], 1.5, "top_k must be an integer"),
        ("q", [{"text": 3}], None, r"documents\[0\]\['text'\] must be a string"),
        ("q", ["a", 7], None, r"documents\[1\] must be a dict or a string"),
    ],
)
def test_bad_input_names_the_field(query: object, documents: object, top_k: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        OverlapReranker().rerank(query, documents, top_k)  # type: ignore[arg-type]


def test_empty_documents_and_top_k_zero_skip_the_model() -> None:
    reranker = OverlapReranker()
    assert reranker.rerank(QUERY, []) == []
    assert reranker.rerank(QUERY, DOCS, top_k=0) == []
    assert reranker.calls == 0


def test_top_k_from_call_then_config() -> None:
    assert len(OverlapReranker().rerank(QUERY, DOCS, top_k=2)) == 2
    configured = OverlapReranker({"top_k": 3})
    assert len(configured.rerank(QUERY, DOCS)) == 3
    assert len(configured.rerank(QUERY, DOCS, top_k=1)) == 1


def test_score_threshold() -> None:
    out = OverlapReranker(score_threshold=0.5).rerank(QUERY, DOCS)
    assert [d["id"] for d in out] == [2, 3]
    out = OverlapReranker().rerank(QUERY, DOCS, score_threshold=0.8)
    assert [d["id"] for d in out] == [2]


def test_ties_keep_input_order() -> None:
    out = OverlapReranker().rerank("zzz", ["b", "a", "c"])
    assert [d["text"] for d in out] == ["b", "a", "c"]


def test_normalize_off_returns_raw_scores() -> None:
    class Logits(OverlapReranker):
        score_scale = "logit"

        def score(self, query: str, texts: object) -> list[float]:
            return [2.0, -1.0]

    assert Logits().rerank("q", ["a", "b"])[0]["rerank_score"] == pytest.approx(1 / (1 + math.exp(-2)))
    assert Logits(normalize=False).rerank("q", ["a", "b"])[0]["rerank_score"] == 2.0


def test_fail_open_keeps_every_document_in_input_order(caplog: pytest.LogCaptureFixture) -> None:
    docs = copy.deepcopy(DOCS)
    with caplog.at_level(logging.WARNING, logger="rerank_layer"):
        out = FailingReranker().rerank(QUERY, docs)
    assert [d["id"] for d in out] == [1, 2, 3, 4]
    assert docs == DOCS
    assert all(d["rerank_score"] is None for d in out)
    assert all("provider is down" in d["rerank_error"] for d in out)
    assert out.ranking.failed and out.ranking.attempts == ["failing", "first_stage"]
    assert "provider is down" in caplog.text
    assert len(FailingReranker().rerank(QUERY, docs, top_k=2)) == 2


def test_fail_open_ignores_threshold_but_keeps_top_k() -> None:
    out = FailingReranker(score_threshold=0.99).rerank(QUERY, DOCS)
    assert len(out) == len(DOCS)


def test_on_error_raise() -> None:
    with pytest.raises(ProviderError, match=r"\[failing\] ConnectionError: provider is down"):
        FailingReranker(on_error="raise").rerank(QUERY, DOCS)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ([0.1], "got 1 scores for 2 documents"),
        ([0.1, float("nan")], "score 1 is not a finite number"),
        ([0.1, float("inf")], "score 1 is not a finite number"),
        ([0.1, None], "score 1 is not a finite number"),
        ("0.1,0.2", "not a list"),
    ],
)
def test_bad_scores_are_provider_errors(output: object, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        BrokenOutputReranker(output, on_error="raise").rerank("q", ["a", "b"])
    assert len(BrokenOutputReranker(output).rerank("q", ["a", "b"])) == 2


def test_fallback_chain_then_first_stage() -> None:
    backup = OverlapReranker()
    out = FailingReranker(fallbacks=[backup]).rerank(QUERY, DOCS)
    assert [d["id"] for d in out] == [2, 3, 1, 4]
    assert out.ranking.provider == "overlap"
    assert out.ranking.attempts == ["failing", "overlap"]
    assert out.ranking.errors == ["failing: [failing] ConnectionError: provider is down"]
    assert out.error is None, "a fallback that succeeded is not a failure"
    second = FailingReranker()
    out = FailingReranker(fallbacks=[second]).rerank(QUERY, DOCS)
    assert second.calls == 1
    assert out.ranking.attempts == ["failing", "failing", "first_stage"]
    assert len(out.ranking.errors) == 2
    assert [d["id"] for d in out] == [1, 2, 3, 4]


def test_rerank_false_skips_the_model() -> None:
    reranker = OverlapReranker()
    out = reranker.rerank(QUERY, DOCS, top_k=3, rerank=False)
    assert [d["id"] for d in out] == [1, 2, 3]
    assert reranker.calls == 0
    assert "rerank_score" not in out[0]


def test_per_document_flags_reach_the_items() -> None:
    class Flagging(OverlapReranker):
        def score(self, query: str, texts: object) -> Scores:
            return Scores([0.9, 0.5], flags={1: "unparseable answer"}, usage={"total_tokens": 7})

    out = Flagging().rerank("q", ["a", "b"])
    assert out[1]["rerank_error"] == "unparseable answer"
    assert "rerank_error" not in out[0]
    assert out.usage == {"total_tokens": 7}


def test_async_matches_sync() -> None:
    reranker = OverlapReranker()
    sync = reranker.rerank(QUERY, DOCS)
    assert asyncio.run(reranker.arerank(QUERY, DOCS)) == sync
    many = asyncio.run(reranker.arerank_many([(QUERY, DOCS), ("cats", DOCS)], top_k=1))
    assert [m[0]["id"] for m in many] == [2, 1]
    assert [m[0]["id"] for m in reranker.rerank_many([(QUERY, DOCS), ("cats", DOCS)])] == [2, 1]
    out = asyncio.run(FailingReranker().arerank(QUERY, DOCS))
    assert [d["id"] for d in out] == [1, 2, 3, 4]


def test_rank_on_plain_texts() -> None:
    ranking = OverlapReranker().rank("red apple", ["pear", "red apple", "apple"])
    assert ranking.indices == [1, 2, 0]
    with pytest.raises(InvalidInputError, match=r"texts\[1\] must be a string"):
        OverlapReranker().rank("q", ["a", 3])  # type: ignore[list-item]


def test_unknown_config_keys_name_the_key_and_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['topk'\].*allowed keys: \[.*'top_k'"):
        OverlapReranker({"topk": 3})
    with pytest.raises(ConfigError, match="top_k"):
        OverlapReranker({"top_k": -2})
    with pytest.raises(ConfigError, match="on_error"):
        RerankerConfig.build({"on_error": "ignore"})


def test_unscored_documents_rank_after_every_scored_one_with_their_flag() -> None:
    """A provider may leave documents unscored (a cascade's eliminated ones): kept, last, flagged."""

    class LeavesTwoOut(OverlapReranker):
        def score(self, query: str, texts: object) -> Scores:
            return Scores([0.0, 0.0, 0.0, 0.5], flags={0: "not reranked", 1: "not reranked"}, unscored=[0, 1])

    ranking = LeavesTwoOut().rank(QUERY, ["a", "b", "c", "d"])
    assert ranking.indices == [3, 2, 0, 1] and ranking.error is None
    assert [item.score for item in ranking.items] == [0.5, 0.0, None, None]
    assert [item.flag for item in ranking.items] == [None, None, "not reranked", "not reranked"]
    assert LeavesTwoOut().rank(QUERY, ["a", "b", "c", "d"], top_k=2).indices == [3, 2]


async def test_rank_and_arank_walk_the_same_pipeline() -> None:
    texts = ["a capital", "france", "x"]
    for reranker in (
        OverlapReranker(top_k=2),
        FailingReranker(fallbacks=[OverlapReranker()]),
        FailingReranker(),
    ):
        sync, in_loop = reranker.rank(QUERY, texts), await reranker.arank(QUERY, texts)
        assert (sync.indices, sync.attempts, sync.provider, sync.error) == (
            in_loop.indices,
            in_loop.attempts,
            in_loop.provider,
            in_loop.error,
        )
        assert len(sync.indices) in (2, 3)
