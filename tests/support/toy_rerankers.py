"""Trivial in-test rerankers: real BaseReranker subclasses with deterministic scores."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

from core.base import BaseReranker
from core.normalize import ScoreScale


def overlap(query: str, text: str) -> float:
    """Share of query words that appear in text."""
    q = set(re.findall(r"\w+", query.lower()))
    d = set(re.findall(r"\w+", text.lower()))
    return len(q & d) / len(q) if q else 0.0


class OverlapReranker(BaseReranker):
    """Scores by word overlap; counts its calls."""

    provider: ClassVar[str] = "overlap"
    score_scale: ClassVar[ScoreScale] = "probability"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls = 0

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls += 1
        return [overlap(query, t) for t in texts]


class FailingReranker(BaseReranker):
    """Always raises, like a provider in an outage."""

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
