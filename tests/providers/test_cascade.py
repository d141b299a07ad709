"""The cascade reranker: a cheap stage narrows, a precise stage orders the survivors, nothing is lost."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from core import ConfigError, create_reranker
from core.base import BaseReranker
from core.normalize import ScoreScale
from core.providers.cascade import CascadeReranker
from core.registry import MASKED_SECRET, reranker_spec
from tests.support.fake_api import word_overlap
from tests.support.toy_rerankers import FailingReranker, OverlapReranker

QUERY = "capital city of france"
DOCS = [
    {"id": 0, "text": "the cat is a small pet"},
    {"id": 1, "text": "paris is the capital city of france"},
    {"id": 2, "text": "france is a country"},
    {"id": 3, "text": "a capital letter"},
    {"id": 4, "text": "the city of light, capital of france, on the seine"},
    {"id": 5, "text": "rain"},
    {"id": 6, "text": "lyon is a city in france"},
    {"id": 7, "text": "berlin is the capital of germany"},
]


class LengthReranker(BaseReranker):
    """Scores by length (shorter is better) and records every text it is shown."""

    provider: ClassVar[str] = "toy_length"
    score_scale: ClassVar[ScoreScale] = "logit"
    seen: ClassVar[list[list[str]]] = []

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        LengthReranker.seen.append(list(texts))
        return [-float(len(t)) / 10 for t in texts]


@pytest.fixture(autouse=True)
def toy_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.registry as registry

    LengthReranker.seen = []
    monkeypatch.setitem(registry._registered, "toy_overlap", OverlapReranker)
    monkeypatch.setitem(registry._registered, "toy_length", LengthReranker)
    monkeypatch.setitem(registry._registered, "toy_failing", FailingReranker)


def cascade(*stages: dict, **config: object) -> CascadeReranker:
    reranker = create_reranker({"provider": "cascade", "config": {"stages": list(stages), **config}})
    assert isinstance(reranker, CascadeReranker)
    return reranker


def stage1_order(docs: list[dict]) -> list[int]:
    """Overlap order, ties in input order (the pipeline's stable sort)."""
    return sorted(range(len(docs)), key=lambda i: -word_overlap(QUERY, docs[i]["text"]))


def test_only_survivors_reach_the_second_stage_and_nothing_is_lost() -> None:
    docs = copy.deepcopy(DOCS)
    reranker = cascade({"provider": "toy_overlap", "keep": 3}, {"provider": "toy_length"})
    out = reranker.rerank(QUERY, docs)
    first = stage1_order(DOCS)
    survivors = first[:3]
    assert LengthReranker.seen == [[DOCS[i]["text"] for i in survivors]]
    expected_head = sorted(survivors, key=lambda i: (len(DOCS[i]["text"]), i))  # ties: input order
    assert [d["id"] for d in out] == expected_head + first[3:]
    assert docs == DOCS, "the caller's documents are untouched"
    for row in out[:3]:
        assert row["rerank_raw_score"] == pytest.approx(-len(row["text"]) / 10)
        assert 0 < row["rerank_score"] < 1 and "rerank_error" not in row
    for row in out[3:]:
        assert row["rerank_score"] is None and row["rerank_raw_score"] is None
        assert "dropped by cascade stage 0" in row["rerank_error"]
    assert out.ranking.provider == "cascade"
    assert out.ranking.model == "overlap > toy_length"


def test_three_stages_list_latest_eliminations_first() -> None:
    reranker = cascade(
        {"provider": "toy_overlap", "keep": 6},
        {"provider": "toy_length", "keep": 3},
        {"provider": "toy_overlap"},
    )
    out = reranker.rerank(QUERY, DOCS)
    first = stage1_order(DOCS)
    second = sorted(first[:6], key=lambda i: len(DOCS[i]["text"]))
    final = sorted(second[:3], key=lambda i: (-word_overlap(QUERY, DOCS[i]["text"]), i))
    assert [d["id"] for d in out] == final + second[3:] + first[6:]
    assert [row["rerank_error"][:40] for row in out[3:6]] == ["not reranked: dropped by cascade stage 1"] * 3
    assert all("stage 0" in row["rerank_error"] for row in out[6:])


def test_top_k_and_threshold_apply_to_the_result() -> None:
    reranker = cascade({"provider": "toy_overlap", "keep": 4}, {"provider": "toy_length"}, top_k=2)
    out = reranker.rerank(QUERY, DOCS)
    assert len(out) == 2 and all(row["rerank_score"] is not None for row in out)
    thresholded = cascade({"provider": "toy_overlap", "keep": 4}, {"provider": "toy_length"}).rerank(
        QUERY, DOCS, score_threshold=0.0
    )
    assert len(thresholded) == 4, "a threshold keeps only scored documents"


async def test_async_path_gives_the_same_result() -> None:
    reranker = cascade({"provider": "toy_overlap", "keep": 3}, {"provider": "toy_length"})
    sync = [d["id"] for d in reranker.rerank(QUERY, DOCS)]
    assert [d["id"] for d in await reranker.arerank(QUERY, DOCS)] == sync


def test_a_failing_stage_fails_open_or_falls_back() -> None:
    failing = cascade({"provider": "toy_overlap", "keep": 3}, {"provider": "toy_failing"})
    out = failing.rerank(QUERY, DOCS)
    assert [d["id"] for d in out] == [d["id"] for d in DOCS], "fail-open keeps the input order"
    assert out.error is not None and "stage 1" in out.error
    with pytest.raises(Exception, match="stage 1"):
        cascade({"provider": "toy_overlap", "keep": 3}, {"provider": "toy_failing"}, on_error="raise").rerank(
            QUERY, DOCS
        )
    spec = {
        "provider": "cascade",
        "config": {"stages": [{"provider": "toy_failing", "keep": 3}, {"provider": "toy_length"}]},
        "fallbacks": [{"provider": "toy_overlap"}],
    }
    rescued = create_reranker(spec).rerank(QUERY, DOCS)
    assert [d["id"] for d in rescued] == stage1_order(DOCS)
    assert rescued.ranking.attempts == ["cascade", "overlap"]


def test_a_stage_with_its_own_fallback_keeps_the_cascade_going() -> None:
    reranker = cascade(
        {"provider": "toy_failing", "keep": 3, "fallbacks": [{"provider": "toy_overlap"}]},
        {"provider": "toy_length"},
    )
    out = reranker.rerank(QUERY, DOCS)
    assert out.error is None
    assert LengthReranker.seen == [[DOCS[i]["text"] for i in stage1_order(DOCS)[:3]]]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([{"provider": "toy_overlap"}, {"provider": "toy_length"}], "stages.0.keep is required"),
        (
            [{"provider": "toy_overlap", "keep": 3}, {"provider": "toy_length", "keep": 2}],
            "stages.1.keep must be unset",
        ),
        ([{"provider": "toy_overlap"}], "stages"),
        ([{"provider": "toy_overlap", "keep": 0}, {"provider": "toy_length"}], "stages.0.keep"),
        ([{"provider": "toy_overlap", "keep": 3, "top": 1}, {"provider": "toy_length"}], "stages.0.top"),
        (
            [{"provider": "nowhere", "keep": 3}, {"provider": "toy_length"}],
            "unknown reranker provider 'nowhere'",
        ),
    ],
)
def test_bad_stage_configs_are_refused(stages: list[dict], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_reranker({"provider": "cascade", "config": {"stages": stages}})


def test_spec_round_trips_with_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    reranker = cascade(
        {"provider": "cohere", "keep": 3, "config": {"api_key": "sk-secret", "model": "rerank-v3.5"}},
        {"provider": "toy_length"},
    )
    spec = reranker_spec(reranker)
    assert "sk-secret" not in repr(spec)
    assert spec["config"]["stages"][0]["config"] == {"api_key": MASKED_SECRET, "model": "rerank-v3.5"}
    monkeypatch.setenv("CO_API_KEY", "from-the-environment")
    rebuilt = create_reranker(spec)
    assert isinstance(rebuilt, CascadeReranker)
    assert [stage.provider for stage in rebuilt.stages] == ["cohere", "toy_length"]


def test_local_models_in_a_cascade(tiny_cross_encoder: Path, tiny_cross_encoder_2labels: Path) -> None:
    texts = [d["text"] for d in DOCS]
    reranker = cascade(
        {"provider": "sentence_transformer", "config": {"model": str(tiny_cross_encoder)}, "keep": 4},
        {"provider": "huggingface", "config": {"model": str(tiny_cross_encoder_2labels), "dtype": "float32"}},
    )
    reranker.warmup()
    first = create_reranker(
        {"provider": "sentence_transformer", "config": {"model": str(tiny_cross_encoder)}}
    ).rank(QUERY, texts)
    survivors = first.indices[:4]
    second = create_reranker(
        {"provider": "huggingface", "config": {"model": str(tiny_cross_encoder_2labels), "dtype": "float32"}}
    ).rank(QUERY, [texts[i] for i in survivors])
    ranking = reranker.rank(QUERY, texts)
    assert ranking.indices == [survivors[i] for i in second.indices] + first.indices[4:]
