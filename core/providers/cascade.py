"""``cascade``: a cheap reranker narrows the candidates, a precise one orders the survivors.

Each stage is any reranker spec plus ``keep`` (how many of its best go on to the next stage).
The result lists the last stage's survivors with its scores, then every eliminated document
without a score (``rerank_score`` None, flagged), latest eliminations first, each group in the
order of the stage that dropped it. No document is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, model_validator

from core.base import BaseReranker
from core.config import RerankerConfig
from core.errors import ProviderError
from core.normalize import ScoreScale
from core.registry import create_reranker
from core.results import Ranking, Scores, merge_usage
from core.secrets import SecretSafeModel


class CascadeStage(SecretSafeModel):
    """One stage: a reranker spec (provider, config, fallbacks) and how many documents it passes on.

    Keys in its config and fallbacks are SecretStr (see :mod:`core.secrets`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    provider: str = Field(description="Provider name, as in create_reranker.")
    config: dict[str, Any] = Field(default_factory=dict, description="The stage reranker's config.")
    fallbacks: list[dict[str, Any]] = Field(default_factory=list, description="Fallback specs of this stage.")
    keep: int | None = Field(
        default=None, ge=1, description="Best documents passed on; None on the last stage."
    )

    def spec(self) -> dict[str, Any]:
        """The ``create_reranker`` spec of this stage."""
        return {"provider": self.provider, "config": self.config, "fallbacks": self.fallbacks}


class CascadeConfig(RerankerConfig):
    """Two or more stages; every stage but the last says how many documents it keeps."""

    stages: list[CascadeStage] = Field(min_length=2, description="Stages, cheapest first.")

    @model_validator(mode="after")
    def _keep_on_every_stage_but_the_last(self) -> CascadeConfig:
        for i, stage in enumerate(self.stages[:-1]):
            if stage.keep is None:
                raise ValueError(f"stages.{i}.keep is required: how many documents stage {i} passes on")
        if self.stages[-1].keep is not None:
            raise ValueError(f"stages.{len(self.stages) - 1}.keep must be unset on the last stage; use top_k")
        return self


class CascadeReranker(BaseReranker):
    """Runs its stages in turn, each on the previous stage's best ``keep`` documents."""

    provider: ClassVar[str] = "cascade"
    config_class: ClassVar[type[RerankerConfig]] = CascadeConfig
    config: CascadeConfig

    def __init__(self, config: RerankerConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.stages: list[BaseReranker] = [create_reranker(stage.spec()) for stage in self.config.stages]

    def __repr__(self) -> str:
        return f"CascadeReranker({' > '.join(repr(s) for s in self.stages)})"

    @property
    def model_name(self) -> str:
        """The stages' models, cheapest first."""
        return " > ".join(stage.model_name for stage in self.stages)

    @property
    def scale(self) -> ScoreScale:
        """The last stage's scale: its raw scores are the cascade's (each call's Scores name the
        scale of the reranker that actually scored, a fallback's when the stage fell back)."""
        return self.stages[-1].scale

    def warmup(self) -> None:
        """Load every stage's model or client."""
        for stage in self.stages:
            for member in (stage, *stage.fallbacks):
                member.warmup()

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """Last-stage raw scores for the survivors; the eliminated are ``unscored``."""
        run = _CascadeRun(self, len(texts))
        for number, (stage, spec) in enumerate(zip(self.stages, self.config.stages, strict=True)):
            run.advance(number, stage.rank(query, run.texts(texts)), spec.keep)
        return run.scores()

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        """Async twin of ``score``: each stage on its own async path."""
        run = _CascadeRun(self, len(texts))
        for number, (stage, spec) in enumerate(zip(self.stages, self.config.stages, strict=True)):
            run.advance(number, await stage.arank(query, run.texts(texts)), spec.keep)
        return run.scores()


class _CascadeRun:
    """One call's state: who is still in, who was dropped where, the last ranking, usage."""

    def __init__(self, cascade: CascadeReranker, n: int) -> None:
        self.cascade = cascade
        self.n = n
        self.survivors = list(range(n))
        self.dropped: list[tuple[int, str]] = []  # latest eliminations first
        self.last_scores: list[float] = []
        self.last_scale: ScoreScale | None = None
        self.usage: list[dict[str, float]] = []

    def texts(self, texts: Sequence[str]) -> list[str]:
        """The texts still in the running."""
        return [texts[i] for i in self.survivors]

    def advance(self, number: int, ranking: Ranking, keep: int | None) -> None:
        """Keep the stage's best ``keep`` scored documents, in its order; drop the rest.

        A stage that failed (and kept its input order) fails the cascade.
        """
        if ranking.failed:
            raise ProviderError(
                f"cascade stage {number} failed: {ranking.error}", provider=self.cascade.provider
            )
        candidates = self.survivors
        scored = [item for item in ranking.items if item.score is not None][:keep]
        kept = {candidates[item.index] for item in scored}
        ranked = [candidates[item.index] for item in ranking.items]
        seen = set(ranked)
        lost = [i for i in ranked if i not in kept] + [i for i in candidates if i not in seen]
        reason = f"not reranked: dropped by cascade stage {number} ({self.cascade.stages[number].provider})"
        self.dropped = [(i, reason) for i in lost] + self.dropped
        self.survivors = [candidates[item.index] for item in scored]
        self.last_scores = [
            item.raw_score if item.raw_score is not None else float(item.score or 0.0) for item in scored
        ]
        self.last_scale = ranking.scale  # the scale of whichever reranker scored: the stage or its fallback
        self.usage.append(ranking.usage)

    def scores(self) -> Scores:
        """Survivors' last-stage raw scores; placeholders that keep the elimination order for the rest."""
        values = [0.0] * self.n
        for position, value in zip(self.survivors, self.last_scores, strict=True):
            values[position] = value
        for rank, (position, _) in enumerate(self.dropped):
            values[position] = 1.0 - (rank + 1) / (len(self.dropped) + 1)
        return Scores(
            values,
            usage=merge_usage(*self.usage),
            flags=dict(self.dropped),
            unscored=[position for position, _ in self.dropped],
            scale=self.last_scale,
        )
