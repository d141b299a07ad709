"""Shared pieces of the LangChain and LlamaIndex adapter tests: a corpus, provider specs, test plugins."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from core.base import BaseReranker
from core.config import RerankerConfig
from core.normalize import ScoreScale
from core.providers.sentence_transformer import SentenceTransformerReranker
from tests.support.fake_api import FakeApiServer, word_overlap
from tests.support.hosted_support import FAST

#: (id, text, metadata) of a small corpus with one clearly right answer per query below.
CORPUS: list[tuple[str, str, dict[str, Any]]] = [
    ("paris", "Paris is the capital and largest city of France.", {"topic": "geography", "year": 2021}),
    (
        "berlin",
        "Berlin is the capital of Germany and its largest city.",
        {"topic": "geography", "year": 2020},
    ),
    ("eiffel", "The Eiffel Tower in Paris was completed in 1889.", {"topic": "landmarks", "year": 2019}),
    ("python", "Python is a programming language that emphasises readability.", {"topic": "software"}),
    ("rust", "Rust is a systems programming language focused on memory safety.", {"topic": "software"}),
    ("coffee", "Coffee is brewed from roasted beans of the coffee plant.", {"topic": "food"}),
    ("tea", "Tea is made by pouring hot water over cured leaves of the tea plant.", {"topic": "food"}),
    ("france", "France is a country in Western Europe with a long history.", {"topic": "geography"}),
]
QUERY = "What is the capital city of France?"
#: The document MiniLM (and word overlap) rank first for QUERY.
BEST_ID = "paris"

#: Provider kinds every adapter test runs with: local models, a third-party plugin, the fake APIs.
LOCAL_KINDS = ("st_embedded", "st_cross_encoder", "hf_cross_encoder", "plugin")
API_KINDS = ("cohere", "zero_entropy", "llm_reranker")
ALL_KINDS = (*LOCAL_KINDS, *API_KINDS)

PLUGIN = "adapter_test_keyword"
OUTAGE = "adapter_test_outage"


class KeywordConfig(RerankerConfig):
    """A plugin config with a secret, to check that serialisation masks it."""

    api_key: SecretStr | None = Field(default=None, description="Never used; only serialised.")


class KeywordReranker(BaseReranker):
    """Third-party plugin: word-overlap scores; records which path (sync/async) ran on which thread."""

    provider: ClassVar[str] = PLUGIN
    config_class: ClassVar[type[RerankerConfig]] = KeywordConfig
    score_scale: ClassVar[ScoreScale] = "probability"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int, list[str]]] = []

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls.append(("sync", threading.get_ident(), list(texts)))
        return [word_overlap(query, t) for t in texts]

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls.append(("async", threading.get_ident(), list(texts)))
        return [word_overlap(query, t) for t in texts]


class OutageReranker(BaseReranker):
    """Third-party plugin in an outage: every call raises."""

    provider: ClassVar[str] = OUTAGE
    score_scale: ClassVar[ScoreScale] = "probability"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise ConnectionError("provider is down")


#: The test plugins by the name they are registered under (``tests/integrations/conftest.py``).
PLUGINS: dict[str, type[BaseReranker]] = {PLUGIN: KeywordReranker, OUTAGE: OutageReranker}


def spec_for(kind: str, cross_encoder: Path, server: FakeApiServer) -> dict[str, Any]:
    """The core config dict of a provider kind (API kinds aim at the fake server)."""
    if kind == "st_embedded":
        return {"provider": "sentence_transformer", "config": {"model": "embedded"}}
    if kind == "st_cross_encoder":
        return {"provider": "sentence_transformer", "config": {"model": str(cross_encoder)}}
    if kind == "hf_cross_encoder":
        return {"provider": "huggingface", "config": {"model": str(cross_encoder)}}
    if kind == "plugin":
        return {"provider": PLUGIN}
    if kind == "llm_reranker":
        return {"provider": kind, "config": {"api_key": "k", "base_url": server.url + "/v1", **FAST}}
    if kind in API_KINDS:
        return {"provider": kind, "config": {"api_key": "k", "base_url": server.url, **FAST}}
    raise ValueError(f"unknown provider kind {kind!r}")


def minilm() -> Any:
    """The packaged all-MiniLM-L6-v2 SentenceTransformer, the same object the 'embedded' reranker uses."""
    return SentenceTransformerReranker({"model": "embedded"}).model


def embed(texts: Sequence[str]) -> list[list[float]]:
    """L2-normalised MiniLM embeddings."""
    vectors = minilm().encode(list(texts), normalize_embeddings=True, show_progress_bar=False)
    return [[float(x) for x in v] for v in vectors]
