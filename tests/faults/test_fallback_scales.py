"""Group 7: scores are normalised on the scale of the reranker that actually scored.

A cascade stage on the ``probability`` scale (cohere, failing with HTTP 500 from the fake server)
falls back to a ``logit`` reranker: its logits must go through the sigmoid, not be clamped to 1.0
as probabilities. The same holds when such a cascade is itself the fallback of a top-level chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from core.base import BaseReranker
from core.normalize import ScoreScale, sigmoid
from core.registry import create_reranker
from tests.support.fake_api import FakeApiServer, Fault

DOCS = ["1", "3", "5"]


class NumberLogits(BaseReranker):
    """A logit-scale reranker: each text's number is its logit."""

    provider: ClassVar[str] = "number_logits"
    score_scale: ClassVar[ScoreScale] = "logit"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return [float(t) for t in texts]


class KeepAll(BaseReranker):
    """A first stage that passes every document on (all score 0.5)."""

    provider: ClassVar[str] = "keep_all"
    score_scale: ClassVar[ScoreScale] = "unit"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return [0.5] * len(texts)


@pytest.fixture(autouse=True)
def toy_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.registry as registry

    monkeypatch.setitem(registry._registered, "number_logits", NumberLogits)
    monkeypatch.setitem(registry._registered, "keep_all", KeepAll)


def _failing_cohere(server: FakeApiServer) -> dict[str, Any]:
    server.script("cohere", *[Fault(status=500) for _ in range(4)])
    config = {"api_key": "k", "base_url": server.url, "max_retries": 0}
    return {"provider": "cohere", "config": config, "fallbacks": [{"provider": "number_logits"}]}


def _cascade(server: FakeApiServer) -> dict[str, Any]:
    stages = [{"provider": "keep_all", "keep": 3}, _failing_cohere(server)]
    return {"provider": "cascade", "config": {"stages": stages}}


def _check_logit_order(out: list[dict[str, Any]]) -> None:
    assert [d["text"] for d in out] == ["5", "3", "1"]
    assert [d["rerank_raw_score"] for d in out] == [5.0, 3.0, 1.0]
    assert [d["rerank_score"] for d in out] == pytest.approx([sigmoid(5), sigmoid(3), sigmoid(1)])


def test_a_cascade_stage_that_fell_back_is_normalised_on_its_fallbacks_scale(server: FakeApiServer) -> None:
    out = create_reranker(_cascade(server)).rerank("q", DOCS)
    _check_logit_order(out)
    assert out.ranking.scale == "logit"
    assert len(server.requests_for("cohere")) == 1, "the probability stage really failed over the wire"


async def test_the_async_cascade_too(server: FakeApiServer) -> None:
    _check_logit_order(await create_reranker(_cascade(server)).arerank("q", DOCS))


def test_a_top_level_fallback_chain_uses_the_scale_of_whoever_scored(server: FakeApiServer) -> None:
    primary = _failing_cohere(server)
    primary["fallbacks"] = [_cascade(server)]  # the chain's fallback is a cascade that fell back itself
    out = create_reranker(primary).rerank("q", DOCS)
    _check_logit_order(out)
    assert out.ranking.attempts == ["cohere", "cascade"]
