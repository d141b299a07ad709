"""Score scales and the one rule per scale that maps raw scores to [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

ScoreScale = Literal["logit", "probability", "cosine", "unit"]

#: How each scale becomes a rerank_score in [0, 1].
SCALE_RULES: dict[ScoreScale, str] = {
    "logit": "sigmoid(raw): a cross-encoder logit becomes a relevance probability",
    "probability": "raw as returned (already a probability), clamped to [0, 1]",
    "cosine": "(raw + 1) / 2: cosine similarity in [-1, 1] mapped linearly, order kept",
    "unit": "raw clamped to [0, 1]: the provider already parsed a score on that scale",
}


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def to_unit_interval(raw: Sequence[float], scale: ScoreScale) -> list[float]:
    """Map raw scores on ``scale`` to [0, 1] by the documented rule."""
    if scale == "logit":
        return [sigmoid(x) for x in raw]
    if scale == "cosine":
        return [_clamp((x + 1.0) / 2.0) for x in raw]
    return [_clamp(x) for x in raw]
