"""RerankPostprocessor in real LlamaIndex query engines: order, scores, ids, metadata, events, failures."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field, ValidationError

from core.errors import ConfigError, InvalidInputError, MissingDependencyError, ProviderError
from core.registry import create_reranker
from llamaindex_rerankers import RerankPostprocessor
from tests.support.adapter_support import (
    ALL_KINDS,
    BEST_ID,
    CORPUS,
    OUTAGE,
    PLUGIN,
    QUERY,
    KeywordReranker,
    embed,
    spec_for,
)
from tests.support.fake_api import FakeApiServer, word_overlap

TOP_K = 6  # first-stage candidates


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from the packaged all-MiniLM-L6-v2."""

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return embed(texts)


class WorstFirstRetriever(BaseRetriever):
    """A weak first stage: another retriever's candidates, worst first."""

    def __init__(self, inner: BaseRetriever) -> None:
        super().__init__()
        self._inner = inner

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._inner.retrieve(query_bundle)[::-1]


class EventCollector(BaseEventHandler):
    """Keeps the rerank events the instrumentation dispatcher emits."""

    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "EventCollector"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
            self.events.append(event)


@pytest.fixture
def events() -> Iterator[list[BaseEvent]]:
    collector = EventCollector()
    root = get_dispatcher()
    root.add_event_handler(collector)
    yield collector.events
    root.event_handlers.remove(collector)


@pytest.fixture
def debug() -> Iterator[LlamaDebugHandler]:
    """A legacy callback handler on the global callback manager (query engines take theirs from Settings)."""
    handler = LlamaDebugHandler()
    previous = Settings.callback_manager
    Settings.callback_manager = CallbackManager([handler])
    yield handler
    Settings.callback_manager = previous


@pytest.fixture(scope="module")
def nodes() -> list[TextNode]:
    return [TextNode(id_=node_id, text=text, metadata=dict(meta)) for node_id, text, meta in CORPUS]


@pytest.fixture(scope="module")
def index(nodes: list[TextNode]) -> VectorStoreIndex:
    return VectorStoreIndex(nodes=nodes, embed_model=MiniLMEmbedding())


@pytest.fixture(scope="module")
def candidates(index: VectorStoreIndex) -> list[NodeWithScore]:
    """What the first stage hands the postprocessor for QUERY."""
    return index.as_retriever(similarity_top_k=TOP_K).retrieve(QUERY)


def engine(index: VectorStoreIndex, postprocessor: RerankPostprocessor) -> Any:
    return index.as_query_engine(similarity_top_k=TOP_K, node_postprocessors=[postprocessor], llm=MockLLM())


def expected(postprocessor: RerankPostprocessor, found: list[NodeWithScore]) -> list[tuple[str, float]]:
    """(id, score) the core reranker itself gives on the same texts, best first, cut to top_n."""
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in found]
    ranking = postprocessor.reranker.rank(QUERY, texts, top_k=postprocessor.top_n)
    assert ranking.error is None and all(item.score is not None for item in ranking.items)
    return [(found[item.index].node.node_id, float(item.score or 0)) for item in ranking.items]


def assert_ranked(out: list[NodeWithScore], want: list[tuple[str, float]]) -> None:
    assert [n.node.node_id for n in out] == [i for i, _ in want]
    assert [n.score for n in out] == pytest.approx([s for _, s in want], abs=1e-5)


def assert_copies_of(out: list[NodeWithScore], sources: list[TextNode], *added: str) -> None:
    """Each output node is a copy with the source's text and metadata (plus ``added`` keys)."""
    by_id = {n.node_id: n for n in sources}
    for item in out:
        source = by_id[item.node.node_id]
        assert item.node is not source and item.node.metadata is not source.metadata
        assert item.node.get_content(metadata_mode=MetadataMode.NONE) == source.text
        assert {k: v for k, v in item.node.metadata.items() if k not in added} == source.metadata
        assert set(added) <= set(item.node.metadata)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_query_engine_reranks_with_every_provider_kind(
    kind: str,
    tiny_cross_encoder: Path,
    server: FakeApiServer,
    index: VectorStoreIndex,
    candidates: list[NodeWithScore],
    nodes: list[TextNode],
    events: list[BaseEvent],
    debug: LlamaDebugHandler,
) -> None:
    postprocessor = RerankPostprocessor.from_config(spec_for(kind, tiny_cross_encoder, server), top_n=3)
    query_engine = engine(index, postprocessor)
    want = expected(postprocessor, candidates)

    response = query_engine.query(QUERY)
    assert_ranked(response.source_nodes, want)
    assert_copies_of(response.source_nodes, nodes)
    assert all(type(n.score) is float for n in response.source_nodes)

    aresponse = await query_engine.aquery(QUERY)
    assert_ranked(aresponse.source_nodes, want)
    assert_copies_of(aresponse.source_nodes, nodes)

    starts = [e for e in events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == len(ends) == 2
    assert {(e.top_n, e.model_name) for e in starts} == {(3, postprocessor.reranker.model_name)}
    assert all([n.node.node_id for n in e.nodes] == [n.node.node_id for n in candidates] for e in starts)
    assert all([n.node.node_id for n in e.nodes] == [i for i, _ in want] for e in ends)

    pairs = debug.get_event_pairs(CBEventType.RERANKING)
    assert len(pairs) == 2
    for start, end in pairs:
        assert start.payload[EventPayload.MODEL_NAME] == postprocessor.reranker.model_name
        assert start.payload[EventPayload.QUERY_STR] == QUERY and start.payload[EventPayload.TOP_K] == 3
        assert [n.node.node_id for n in end.payload[EventPayload.NODES]] == [i for i, _ in want]


@pytest.mark.parametrize("kind", ["st_embedded", "plugin", "cohere", "zero_entropy", "llm_reranker"])
def test_meaningful_providers_put_the_right_node_first(
    kind: str, tiny_cross_encoder: Path, server: FakeApiServer, index: VectorStoreIndex
) -> None:
    """Behind a weak first stage (the index's list, worst first) a real model or the fakes find the answer."""
    worst_first = WorstFirstRetriever(index.as_retriever(similarity_top_k=TOP_K))
    assert worst_first.retrieve(QUERY)[-1].node.node_id == BEST_ID
    postprocessor = RerankPostprocessor.from_config(spec_for(kind, tiny_cross_encoder, server), top_n=1)
    query_engine = RetrieverQueryEngine.from_args(
        worst_first, llm=MockLLM(), node_postprocessors=[postprocessor]
    )
    response = query_engine.query(QUERY)
    assert [n.node.node_id for n in response.source_nodes] == [BEST_ID]


def test_inputs_untouched_and_retrieval_score_kept(candidates: list[NodeWithScore]) -> None:
    snapshot = [n.model_dump() for n in candidates]
    postprocessor = RerankPostprocessor({"provider": PLUGIN}, top_n=None, keep_retrieval_score=True)
    out = postprocessor.postprocess_nodes(candidates, query_str=QUERY)
    assert [n.model_dump() for n in candidates] == snapshot
    assert len(out) == len(candidates)
    first_stage = {n.node.node_id: n.score for n in candidates}
    for item in out:
        assert item.node.metadata["retrieval_score"] == first_stage[item.node.node_id]
        assert item.score == word_overlap(QUERY, item.node.get_content(metadata_mode=MetadataMode.EMBED))
        assert "retrieval_score" not in item.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "retrieval_score" not in item.node.get_content(metadata_mode=MetadataMode.EMBED)
    assert all(n is not c for n in out for c in candidates)


def test_metadata_mode_decides_the_text_the_reranker_reads(nodes: list[TextNode]) -> None:
    hidden = nodes[0].model_copy(update={"excluded_embed_metadata_keys": ["year"]})
    given = [NodeWithScore(node=hidden, score=0.5)]
    for mode in (MetadataMode.EMBED, MetadataMode.NONE, MetadataMode.ALL):
        reranker = KeywordReranker()
        RerankPostprocessor(reranker, metadata_mode=mode).postprocess_nodes(given, query_str=QUERY)
        assert reranker.calls[0][2] == [hidden.get_content(metadata_mode=mode)]
    default = KeywordReranker()
    RerankPostprocessor(default).postprocess_nodes(given, query_str=QUERY)
    assert "topic: geography" in default.calls[0][2][0] and "year" not in default.calls[0][2][0]


async def test_zero_nodes_return_nothing_without_calling_the_model(events: list[BaseEvent]) -> None:
    reranker = KeywordReranker()
    postprocessor = RerankPostprocessor(reranker)
    assert postprocessor.postprocess_nodes([], query_str=QUERY) == []
    assert await postprocessor.apostprocess_nodes([], query_str=QUERY) == []
    assert reranker.calls == [] and events == []


async def test_apostprocess_awaits_the_async_path_on_the_loop_thread(candidates: list[NodeWithScore]) -> None:
    reranker = KeywordReranker()
    await RerankPostprocessor(reranker).apostprocess_nodes(candidates, query_str=QUERY)
    assert [(path, thread) for path, thread, _ in reranker.calls] == [("async", threading.get_ident())]


async def test_cohere_aquery_runs_on_the_async_sdk_client_without_a_thread(
    server: FakeApiServer, index: VectorStoreIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_for("cohere", Path(), server)
    reranker = create_reranker({**spec, "config": {**spec["config"], "on_error": "raise"}})
    loop_thread = threading.get_ident()
    request_threads: list[int] = []
    original = reranker._arequest  # type: ignore[attr-defined]

    async def recording_arequest(*args: Any, **kwargs: Any) -> Any:
        request_threads.append(threading.get_ident())
        return await original(*args, **kwargs)

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sync path ran")

    monkeypatch.setattr(reranker, "_arequest", recording_arequest)
    monkeypatch.setattr(reranker, "score", no_sync)
    response = await engine(index, RerankPostprocessor(reranker, top_n=1)).aquery(QUERY)
    assert [n.node.node_id for n in response.source_nodes] == [BEST_ID]
    assert request_threads == [loop_thread]
    assert len(server.requests_for("cohere")) == 1


async def test_fail_open_keeps_every_candidate_with_first_stage_scores(
    index: VectorStoreIndex, candidates: list[NodeWithScore], events: list[BaseEvent]
) -> None:
    spec = {"provider": OUTAGE, "config": {"on_error": "fail_open"}}
    for top_n, count in ((None, len(candidates)), (2, 2)):
        query_engine = engine(index, RerankPostprocessor.from_config(spec, top_n=top_n))
        for response in (query_engine.query(QUERY), await query_engine.aquery(QUERY)):
            out = response.source_nodes
            assert [(n.node.node_id, n.score) for n in out] == [
                (n.node.node_id, n.score) for n in candidates
            ][:count]
            for item in out:
                assert "provider is down" in item.node.metadata["rerank_error"]
                assert "rerank_error" not in item.node.get_content(metadata_mode=MetadataMode.LLM)
    assert any(isinstance(e, ReRankEndEvent) and len(e.nodes) == len(candidates) for e in events)


async def test_fail_closed_raises(index: VectorStoreIndex) -> None:
    query_engine = engine(index, RerankPostprocessor({"provider": OUTAGE, "config": {"on_error": "raise"}}))
    with pytest.raises(ProviderError, match="provider is down"):
        query_engine.query(QUERY)
    with pytest.raises(ProviderError, match="provider is down"):
        await query_engine.aquery(QUERY)


def test_a_later_success_drops_a_stale_error(candidates: list[NodeWithScore]) -> None:
    failed = RerankPostprocessor({"provider": OUTAGE}, top_n=None).postprocess_nodes(
        candidates, query_str=QUERY
    )
    assert all("rerank_error" in n.node.metadata for n in failed)
    out = RerankPostprocessor({"provider": PLUGIN}, top_n=None).postprocess_nodes(failed, query_str=QUERY)
    assert all("rerank_error" not in n.node.metadata for n in out)


def test_to_dict_round_trips_and_masks_the_key() -> None:
    spec = {"provider": PLUGIN, "config": {"api_key": "sk-secret", "top_k": 9}}
    postprocessor = RerankPostprocessor.from_config(spec, top_n=4, keep_retrieval_score=True)
    assert RerankPostprocessor.class_name() == "RerankPostprocessor"
    data = postprocessor.to_dict()
    assert data["class_name"] == "RerankPostprocessor"
    assert data["reranker"] == {"provider": PLUGIN, "config": {"api_key": "**********", "top_k": 9}}
    assert "sk-secret" not in postprocessor.to_json() and "sk-secret" not in repr(postprocessor)
    for rebuilt in (
        RerankPostprocessor.from_dict(data),
        RerankPostprocessor.from_json(postprocessor.to_json()),
    ):
        assert isinstance(rebuilt.reranker, KeywordReranker)
        assert (rebuilt.top_n, rebuilt.keep_retrieval_score, rebuilt.metadata_mode) == (
            4,
            True,
            MetadataMode.EMBED,
        )
        assert rebuilt.reranker.config.top_k == 9 and rebuilt.reranker.config.api_key is None


def test_cohere_from_dict_reads_the_key_from_the_environment(
    server: FakeApiServer, monkeypatch: pytest.MonkeyPatch, candidates: list[NodeWithScore]
) -> None:
    data = RerankPostprocessor.from_config(spec_for("cohere", Path(), server)).to_dict()
    assert data["reranker"]["config"]["api_key"] == "**********"
    monkeypatch.setenv("CO_API_KEY", "from-env")
    RerankPostprocessor.from_dict(data).postprocess_nodes(candidates, query_str=QUERY)
    assert server.requests_for("cohere")[-1].headers["authorization"] == "Bearer from-env"


def test_bad_arguments_are_errors(candidates: list[NodeWithScore]) -> None:
    with pytest.raises(ConfigError, match="topn"):
        RerankPostprocessor({"provider": PLUGIN}, topn=2)
    with pytest.raises(ValidationError, match="top_n"):
        RerankPostprocessor({"provider": PLUGIN}, top_n=-1)
    postprocessor = RerankPostprocessor({"provider": PLUGIN})
    with pytest.raises(InvalidInputError, match="query_bundle is required"):
        postprocessor.postprocess_nodes(candidates)
    with pytest.raises(InvalidInputError, match="query must not be blank"):
        postprocessor.postprocess_nodes(candidates, QueryBundle(" "))


def test_import_without_llama_index_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("llamaindex_rerankers")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "llama_index.core", None)
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[llamaindex\]") as info:
        importlib.import_module("llamaindex_rerankers")
    assert info.value.extra == "llamaindex"
