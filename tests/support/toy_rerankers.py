"""Trivial in-test rerankers: real BaseReranker subclasses with deterministic scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from core.base import BaseReranker
from core.normalize import ScoreScale
from tests.support.fake_api import word_overlap


class OverlapReranker(BaseReranker):
    """Scores by word overlap (the fake server's rule); counts its calls."""

    provider: ClassVar[str] = "overlap"
    score_scale: ClassVar[ScoreScale] = "probability"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls = 0

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls += 1
        return [word_overlap(query, t) for t in texts]


class FailingReranker(BaseReranker):
    """Always raises, like a provider in an outage; counts its calls."""

    provider: ClassVar[str] = "failing"
    score_scale: ClassVar[ScoreScale] = "logit"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls = 0

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls += 1
        raise ConnectionError("provider is down")


class BrokenOutputReranker(BaseReranker):
    """Returns whatever it was built with, to exercise the score checks."""

    provider: ClassVar[str] = "broken"
    score_scale: ClassVar[ScoreScale] = "logit"

    def __init__(self, output: object, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.output = output

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        return self.output  # type: ignore[return-value]


class ScriptedReranker(BaseReranker):
    """Scores each text by the first keyword of ``scores`` it contains (0 for none); records its calls."""

    provider: ClassVar[str] = "scripted"
    score_scale: ClassVar[ScoreScale] = "unit"

    def __init__(self, scores: Mapping[str, float], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.scores = dict(scores)
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls.append((query, list(texts)))
        return [next((s for word, s in self.scores.items() if word in t), 0.0) for t in texts]
