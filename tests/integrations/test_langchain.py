"""RerankCompressor in real LangChain pipelines: ContextualCompressionRetriever and LCEL chains."""

from __future__ import annotations

import copy
import importlib
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_community.retrievers import BM25Retriever
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import ValidationError

from core.errors import ConfigError, InvalidInputError, MissingDependencyError, ProviderError
from core.registry import create_reranker
from langchain_rerankers import RerankCompressor
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


class MiniLMEmbeddings(Embeddings):
    """LangChain embeddings from the packaged all-MiniLM-L6-v2."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return embed([text])[0]


class RunRecorder(BaseCallbackHandler):
    """Records chain and retriever runs: (event, name, run_id, parent_run_id)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str | None, UUID, UUID | None]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.append(("chain_start", kwargs.get("name"), run_id, kwargs.get("parent_run_id")))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.append(("chain_end", None, run_id, kwargs.get("parent_run_id")))

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.append(("retriever_start", kwargs.get("name"), run_id, kwargs.get("parent_run_id")))


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return [Document(page_content=text, id=doc_id, metadata=dict(meta)) for doc_id, text, meta in CORPUS]


@pytest.fixture(scope="module")
def bm25(corpus: list[Document]) -> BM25Retriever:
    return BM25Retriever.from_documents(corpus, k=6)


@pytest.fixture(scope="module")
def vector_retriever(corpus: list[Document]) -> Any:
    store = InMemoryVectorStore(MiniLMEmbeddings())
    store.add_documents(corpus)
    return store.as_retriever(search_kwargs={"k": 6})


def expected(compressor: RerankCompressor, query: str, docs: list[Document]) -> list[tuple[str, float]]:
    """(id, score) the core reranker itself gives, best first, cut to top_n."""
    ranking = compressor.reranker.rank(query, [d.page_content for d in docs], top_k=compressor.top_n)
    assert ranking.error is None and all(item.score is not None for item in ranking.items)
    return [(str(docs[item.index].id), float(item.score or 0)) for item in ranking.items]


def ids_scores(docs: list[Document]) -> list[tuple[str, float]]:
    return [(str(d.id), d.metadata["relevance_score"]) for d in docs]


def assert_ranked(out: list[Document], want: list[tuple[str, float]]) -> None:
    """Same ids in the same order as ``want``, same scores (to float32 precision)."""
    assert [i for i, _ in ids_scores(out)] == [i for i, _ in want]
    assert [s for _, s in ids_scores(out)] == pytest.approx([s for _, s in want], abs=1e-5)


def assert_copies_of(out: list[Document], sources: list[Document]) -> None:
    """Every output is a new Document with the source's id, text and metadata plus a float score."""
    by_id = {d.id: d for d in sources}
    for doc in out:
        source = by_id[doc.id]
        assert doc is not source and doc.metadata is not source.metadata
        assert doc.page_content == source.page_content
        assert {k: v for k, v in doc.metadata.items() if k != "relevance_score"} == source.metadata
        assert (
            type(doc.metadata["relevance_score"]) is float and 0.0 <= doc.metadata["relevance_score"] <= 1.0
        )


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_contextual_compression_retriever_reranks_with_every_provider_kind(
    kind: str, tiny_cross_encoder: Path, server: FakeApiServer, bm25: BM25Retriever, corpus: list[Document]
) -> None:
    compressor = RerankCompressor.from_config(spec_for(kind, tiny_cross_encoder, server))
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25)
    candidates = bm25.invoke(QUERY)
    snapshot = copy.deepcopy(candidates)

    out = retriever.invoke(QUERY)
    want = expected(compressor, QUERY, candidates)
    assert len(out) == compressor.top_n == 3
    assert_ranked(out, want)
    assert [s for _, s in ids_scores(out)] == sorted((s for _, s in ids_scores(out)), reverse=True)
    assert_copies_of(out, corpus)
    assert candidates == snapshot  # the retrieved documents were not touched

    assert_ranked(await retriever.ainvoke(QUERY), want)


@pytest.mark.parametrize("kind", ["st_embedded", "plugin", "cohere", "zero_entropy", "llm_reranker"])
def test_meaningful_providers_put_the_right_document_first(
    kind: str, tiny_cross_encoder: Path, server: FakeApiServer, bm25: BM25Retriever
) -> None:
    """Behind a weak first stage (BM25's list, worst first) a real model or the fakes find the answer."""
    worst_first = bm25 | RunnableLambda(lambda docs: docs[::-1])
    assert worst_first.invoke(QUERY)[-1].id == BEST_ID
    compressor = RerankCompressor.from_config(spec_for(kind, tiny_cross_encoder, server), top_n=1)
    out = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=worst_first).invoke(QUERY)
    assert [d.id for d in out] == [BEST_ID]


def test_api_provider_scores_are_the_servers(server: FakeApiServer, corpus: list[Document]) -> None:
    compressor = RerankCompressor.from_config(spec_for("cohere", Path(), server), top_n=None)
    out = compressor.compress_documents(corpus, QUERY)
    want = sorted(((d.id, word_overlap(QUERY, d.page_content)) for d in corpus), key=lambda p: -p[1])
    assert ids_scores(list(out)) == want
    (request,) = server.requests_for("cohere")
    assert request.body["documents"] == [d.page_content for d in corpus]


async def test_lcel_chain_sync_async_batch_and_stream(
    vector_retriever: Any, tiny_cross_encoder: Path
) -> None:
    compressor = RerankCompressor(
        reranker={"provider": "huggingface", "config": {"model": str(tiny_cross_encoder)}}
    )
    chain = RunnableParallel(documents=vector_retriever, query=RunnablePassthrough()) | compressor
    queries = [QUERY, "Which language is about memory safety?"]
    want = [expected(compressor, q, vector_retriever.invoke(q)) for q in queries]

    def check(out: list[Document], index: int) -> None:
        assert_ranked(out, want[index])

    check(chain.invoke(queries[0]), 0)
    check(await chain.ainvoke(queries[0]), 0)
    for i, out in enumerate(chain.batch(queries)):
        check(out, i)
    for i, out in enumerate(await chain.abatch(queries)):
        check(out, i)
    streamed = list(chain.stream(queries[1]))
    assert len(streamed) == 1
    check(streamed[0], 1)
    astreamed = [chunk async for chunk in chain.astream(queries[1])]
    assert len(astreamed) == 1
    check(astreamed[0], 1)


def test_vector_store_first_stage_with_the_embedded_model(vector_retriever: Any) -> None:
    compressor = RerankCompressor.from_config(
        {"provider": "sentence_transformer", "config": {"model": "embedded"}}
    )
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=vector_retriever)
    out = retriever.invoke(QUERY)
    assert out[0].id == BEST_ID and len(out) == 3
    assert_ranked(out, expected(compressor, QUERY, vector_retriever.invoke(QUERY)))


def test_callbacks_reach_the_run(bm25: BM25Retriever, corpus: list[Document]) -> None:
    compressor = RerankCompressor(reranker={"provider": PLUGIN})
    direct = RunRecorder()
    compressor.compress_documents(corpus, QUERY, callbacks=[direct])
    assert [(e, n) for e, n, _, _ in direct.runs] == [
        ("chain_start", "RerankCompressor"),
        ("chain_end", None),
    ]

    nested = RunRecorder()
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25)
    retriever.invoke(QUERY, config={"callbacks": [nested]})
    (outer,) = [
        r for r in nested.runs if r[0] == "retriever_start" and r[1] == "ContextualCompressionRetriever"
    ]
    (rerank,) = [r for r in nested.runs if r[1] == "RerankCompressor"]
    assert rerank[3] == outer[2]  # the rerank run is a child of the retriever run


async def test_async_callbacks_reach_the_run(corpus: list[Document]) -> None:
    recorder = RunRecorder()
    await RerankCompressor(reranker={"provider": PLUGIN}).acompress_documents(
        corpus, QUERY, callbacks=[recorder]
    )
    assert [(e, n) for e, n, _, _ in recorder.runs] == [
        ("chain_start", "RerankCompressor"),
        ("chain_end", None),
    ]


async def test_acompress_awaits_the_async_path_on_the_loop_thread(corpus: list[Document]) -> None:
    reranker = KeywordReranker()
    compressor = RerankCompressor(reranker=reranker)
    await compressor.acompress_documents(corpus, QUERY)
    await compressor.ainvoke({"query": QUERY, "documents": corpus})
    assert [(path, thread) for path, thread, _ in reranker.calls] == [("async", threading.get_ident())] * 2


async def test_cohere_async_runs_on_the_async_sdk_client_without_a_thread(
    server: FakeApiServer, bm25: BM25Retriever, monkeypatch: pytest.MonkeyPatch
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
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=reranker), base_retriever=bm25
    )
    out = await retriever.ainvoke(QUERY)
    assert out[0].id == BEST_ID
    assert request_threads == [loop_thread]
    assert len(server.requests_for("cohere")) == 1


def test_fail_open_keeps_every_candidate_in_first_stage_order(bm25: BM25Retriever) -> None:
    spec = {"provider": OUTAGE, "config": {"on_error": "fail_open"}}
    candidates = bm25.invoke(QUERY)
    for top_n, count in ((None, len(candidates)), (2, 2)):
        compressor = RerankCompressor.from_config(spec, top_n=top_n)
        out = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25).invoke(QUERY)
        assert [d.id for d in out] == [d.id for d in candidates][:count]
        for doc, source in zip(out, candidates, strict=False):
            assert "relevance_score" not in doc.metadata
            assert "provider is down" in doc.metadata["rerank_error"]
            assert {k: v for k, v in doc.metadata.items() if k != "rerank_error"} == source.metadata


async def test_fail_open_drops_a_stale_score_from_an_earlier_stage(corpus: list[Document]) -> None:
    stale = [d.model_copy(update={"metadata": {**d.metadata, "relevance_score": 0.5}}) for d in corpus]
    out = await RerankCompressor.from_config({"provider": OUTAGE}).acompress_documents(stale, QUERY)
    assert [d.id for d in out] == [d.id for d in corpus][:3]
    assert all("relevance_score" not in d.metadata and "rerank_error" in d.metadata for d in out)
    assert all(d.metadata["relevance_score"] == 0.5 for d in stale)


async def test_fail_closed_raises(bm25: BM25Retriever) -> None:
    compressor = RerankCompressor.from_config({"provider": OUTAGE, "config": {"on_error": "raise"}})
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25)
    with pytest.raises(ProviderError, match="provider is down"):
        retriever.invoke(QUERY)
    with pytest.raises(ProviderError, match="provider is down"):
        await retriever.ainvoke(QUERY)


def test_fallback_reranker_scores_when_the_provider_fails(corpus: list[Document]) -> None:
    compressor = RerankCompressor.from_config(
        {"provider": OUTAGE, "fallbacks": [{"provider": PLUGIN}]}, top_n=1
    )
    (doc,) = compressor.compress_documents(corpus, QUERY)
    assert doc.id == BEST_ID and "rerank_error" not in doc.metadata
    assert doc.metadata["relevance_score"] == word_overlap(QUERY, doc.page_content)


def test_top_n_and_score_threshold(corpus: list[Document]) -> None:
    scores = {d.id: word_overlap(QUERY, d.page_content) for d in corpus}
    everything = RerankCompressor(reranker={"provider": PLUGIN}, top_n=None).compress_documents(corpus, QUERY)
    assert len(everything) == len(corpus)
    threshold = 0.3
    kept = RerankCompressor(reranker={"provider": PLUGIN}, top_n=None, score_threshold=threshold)
    out = kept.compress_documents(corpus, QUERY)
    assert {d.id for d in out} == {i for i, s in scores.items() if s >= threshold}
    assert 0 < len(out) < len(corpus)
    assert RerankCompressor(reranker={"provider": PLUGIN}, top_n=0).compress_documents(corpus, QUERY) == []


def test_empty_input_returns_nothing_without_calling_the_model() -> None:
    reranker = KeywordReranker()
    assert RerankCompressor(reranker=reranker).compress_documents([], QUERY) == []
    assert reranker.calls == []


def test_bad_input_is_named() -> None:
    compressor = RerankCompressor(reranker={"provider": PLUGIN})
    with pytest.raises(InvalidInputError, match="query must not be blank"):
        compressor.compress_documents([Document(page_content="x")], "  ")
    with pytest.raises(InvalidInputError, match="'query' and 'documents'"):
        compressor.invoke([Document(page_content="x")])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"documents\[1\] must be a langchain Document"):
        compressor.invoke({"query": QUERY, "documents": [Document(page_content="x"), "y"]})  # type: ignore[list-item]


def test_unknown_fields_and_bad_configs_are_errors() -> None:
    with pytest.raises(ValidationError, match="topn"):
        RerankCompressor(reranker={"provider": PLUGIN}, topn=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="top_n"):
        RerankCompressor(reranker={"provider": PLUGIN}, top_n=-1)
    with pytest.raises(ConfigError, match="unknown reranker provider 'nope'"):
        RerankCompressor.from_config({"provider": "nope"})
    with pytest.raises(ConfigError, match="unknown config key"):
        RerankCompressor.from_config({"provider": PLUGIN, "config": {"modle": "x"}})


def test_serialisation_round_trips_and_masks_the_key() -> None:
    compressor = RerankCompressor.from_config(
        {"provider": PLUGIN, "config": {"api_key": "sk-secret", "top_k": 9}}
    )
    dumped = compressor.model_dump()
    assert dumped["reranker"] == {"provider": PLUGIN, "config": {"api_key": "**********", "top_k": 9}}
    assert "sk-secret" not in compressor.model_dump_json() and "sk-secret" not in repr(compressor)
    rebuilt = RerankCompressor(**dumped)
    assert isinstance(rebuilt.reranker, KeywordReranker)
    assert rebuilt.reranker.config.top_k == 9 and rebuilt.top_n == compressor.top_n
    assert rebuilt.reranker.config.api_key is None  # the masked key is not used as a key


def test_cohere_from_dump_reads_the_key_from_the_environment(
    server: FakeApiServer, monkeypatch: pytest.MonkeyPatch, corpus: list[Document]
) -> None:
    compressor = RerankCompressor.from_config(spec_for("cohere", Path(), server))
    dumped = compressor.model_dump()
    assert dumped["reranker"]["config"]["api_key"] == "**********"
    monkeypatch.setenv("CO_API_KEY", "from-env")
    RerankCompressor(**dumped).compress_documents(corpus, QUERY)
    assert server.requests_for("cohere")[-1].headers["authorization"] == "Bearer from-env"


def test_import_without_langchain_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("langchain_rerankers")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[langchain\]") as info:
        importlib.import_module("langchain_rerankers")
    assert info.value.extra == "langchain"
