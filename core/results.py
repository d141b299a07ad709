"""Result types: raw provider scores, rankings and reranked document lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.normalize import ScoreScale


class Scores(list[float]):
    """Raw scores in input order, optionally with usage and per-document flags.

    A provider's ``score`` may return a plain list; this subclass lets it report
    usage (tokens, billed units) and per-document problems (index -> message).
    ``unscored`` lists positions the provider did not score (outside an API ``top_n``):
    their value is a placeholder and the pipeline ranks them after every scored one.
    ``scale`` names the scale of these values when it is not the provider's own (a cascade
    whose last stage fell back to a reranker on another scale); None: the provider's.
    """

    def __init__(
        self,
        values: Iterable[float] = (),
        *,
        usage: Mapping[str, float] | None = None,
        flags: Mapping[int, str] | None = None,
        unscored: Iterable[int] = (),
        scale: ScoreScale | None = None,
    ) -> None:
        super().__init__(values)
        self.usage: dict[str, float] = dict(usage or {})
        self.flags: dict[int, str] = dict(flags or {})
        self.unscored: frozenset[int] = frozenset(unscored)
        self.scale: ScoreScale | None = scale


def merge_usage(*usages: Mapping[str, float]) -> dict[str, float]:
    """Sum usage counters key by key."""
    total: dict[str, float] = {}
    for usage in usages:
        for key, value in usage.items():
            total[key] = total.get(key, 0) + value
    return total


@dataclass(frozen=True)
class RankedItem:
    """One input position with its scores; ``score`` is None when scoring failed."""

    index: int
    score: float | None
    raw_score: float | None
    flag: str | None = None


@dataclass
class Ranking:
    """The outcome of one rerank call, in output order."""

    items: list[RankedItem]
    provider: str
    model: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    attempts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: The scale of the raw scores: that of the reranker that scored (None when none did).
    scale: ScoreScale | None = None

    @property
    def failed(self) -> bool:
        """True when no reranker produced scores and the first-stage order was kept."""
        return self.error is not None

    @property
    def indices(self) -> list[int]:
        """Input positions in output order."""
        return [item.index for item in self.items]


class RerankedDocuments(list[dict[str, Any]]):
    """The list ``rerank`` returns: plain dicts, plus the call's ``ranking`` details."""

    def __init__(self, items: Iterable[dict[str, Any]], ranking: Ranking) -> None:
        super().__init__(items)
        self.ranking = ranking

    @property
    def usage(self) -> dict[str, float]:
        """Usage counters reported by the provider(s)."""
        return self.ranking.usage

    @property
    def error(self) -> str | None:
        """The failure that made the call fall back, if any."""
        return self.ranking.error
