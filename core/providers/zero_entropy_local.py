"""``zero_entropy`` with ``"local": true``: ZeroEntropy's open zerank weights on the local LLM path.

``{"provider": "zero_entropy", "config": {"model": "zerank-1-small", "local": true}}`` scores with
the open weights (zerank-1-small is Apache-2.0; zerank-1 and zerank-2 are CC-BY-NC-4.0) as the
``huggingface`` provider does, with the zerank family's prompt and score rule: the raw score is
``logit("Yes") / 5`` and ``rerank_score = sigmoid(raw)``, the probability the model card and
ZeroEntropy's own code report. The hosted provider is untouched; ``create_reranker`` routes here.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from core.config import RerankerConfig
from core.providers.huggingface import HuggingFaceReranker, HuggingFaceRerankerConfig

#: The hosted API's model names and the open weights behind them.
ZERANK_WEIGHTS: dict[str, str] = {
    "zerank-1-small": "zeroentropy/zerank-1-small",
    "zerank-1": "zeroentropy/zerank-1",
    "zerank-2": "zeroentropy/zerank-2",
}


class ZeroEntropyLocalConfig(HuggingFaceRerankerConfig):
    """The ``huggingface`` fields, with zerank's names and family as defaults."""

    model: str = Field(
        default="zerank-1-small",
        description="zerank-1-small, zerank-1 or zerank-2 (their open weights), another hub id or a folder.",
    )
    local: Literal[True] = Field(
        default=True, description="Score with the open weights on this machine (false: the hosted API)."
    )
    family: str | None = Field(default="zerank", description="The prompt and score rule (zerank's).")


class ZeroEntropyLocalReranker(HuggingFaceReranker):
    """zerank open weights scored locally; reported as the ``zero_entropy`` provider."""

    provider: ClassVar[str] = "zero_entropy"
    config_class: ClassVar[type[RerankerConfig]] = ZeroEntropyLocalConfig
    config: ZeroEntropyLocalConfig

    @property
    def checkpoint_name(self) -> str:
        """The open weights' hub id for a zerank API name, else the model as given."""
        return ZERANK_WEIGHTS.get(self.config.model, super().checkpoint_name)
