"""Property tests: whatever the input and scores, no document is lost, reordered wrongly or mutated."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

from hypothesis import given, settings
from hypothesis import strategies as st

from core.base import BaseReranker
from core.normalize import ScoreScale

texts = st.text(min_size=0, max_size=30)
metadata = st.dictionaries(
    st.sampled_from(["source", "score", "tags", "nested"]),
    st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3)),
    max_size=3,
)


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any] | str]:
    n = draw(st.integers(min_value=0, max_value=25))
    out: list[dict[str, Any] | str] = []
    for i in range(n):
        if draw(st.booleans()):
            out.append(draw(texts))
        else:
            key = draw(st.sampled_from(["memory", "text", "content"]))
            out.append({"id": i, key: draw(texts), **draw(metadata)})
    return out


class ScriptedReranker(BaseReranker):
    """Returns the scores hypothesis drew (possibly broken: wrong length, NaN)."""

    provider: ClassVar[str] = "scripted"
    score_scale: ClassVar[ScoreScale] = "logit"

    def __init__(self, scores: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scores = scores

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return self.scores[: len(texts)]


def _key(doc: dict[str, Any] | str) -> str:
    return repr(doc)


def _check(docs: list[dict[str, Any] | str], out: list[dict[str, Any]], top_k: int | None) -> None:
    expected = len(docs) if top_k is None else min(top_k, len(docs))
    assert len(out) == expected
    originals = [d if isinstance(d, dict) else {"text": d} for d in docs]
    remaining = [_key(d) for d in originals]
    for row in out:
        base = {k: v for k, v in row.items() if not k.startswith("rerank_")}
        assert _key(base) in remaining, "every output row is an input document with its keys intact"
        remaining.remove(_key(base))


@settings(max_examples=150, deadline=None)
@given(
    docs=documents(),
    scores=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=30),
    top_k=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
)
def test_output_is_a_permutation_or_top_k_prefix(
    docs: list[dict[str, Any] | str], scores: list[float], top_k: int | None
) -> None:
    before = copy.deepcopy(docs)
    out = ScriptedReranker(scores).rerank("query", docs, top_k)
    assert docs == before, "the caller's documents are never mutated"
    _check(docs, out, top_k)
    if out and out.error is None:
        values = [row["rerank_score"] for row in out]
        assert values == sorted(values, reverse=True)
        assert all(0.0 <= v <= 1.0 for v in values)
    elif out:
        assert all(row["rerank_score"] is None and row["rerank_error"] for row in out)
        kept = [{k: v for k, v in row.items() if not k.startswith("rerank_")} for row in out]
        assert kept == [d if isinstance(d, dict) else {"text": d} for d in docs][: len(out)]


@settings(max_examples=60, deadline=None)
@given(docs=documents(), top_k=st.one_of(st.none(), st.integers(min_value=0, max_value=30)))
def test_full_ranking_is_a_permutation(docs: list[dict[str, Any] | str], top_k: int | None) -> None:
    scores = [float(i % 7) - 3.0 for i in range(len(docs))]
    out = ScriptedReranker(scores).rerank("query", docs, top_k)
    _check(docs, out, top_k)
    assert out.ranking.indices == sorted(range(len(docs)), key=lambda i: -scores[i])[: len(out)]


@settings(max_examples=60, deadline=None)
@given(docs=documents(), threshold=st.floats(min_value=0, max_value=1))
def test_threshold_keeps_exactly_the_documents_above_it(
    docs: list[dict[str, Any] | str], threshold: float
) -> None:
    scores = [float(i % 5) - 2.0 for i in range(len(docs))]
    out = ScriptedReranker(scores).rerank("query", docs, score_threshold=threshold)
    full = ScriptedReranker(scores).rerank("query", docs)
    assert out == [row for row in full if row["rerank_score"] >= threshold]
