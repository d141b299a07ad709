"""RerankCompressor built the way the LangChain peers are: flat keywords copied from their constructors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
from langchain_community.cross_encoders import HuggingFaceCrossEncoder
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from pydantic import ValidationError

from core.errors import ConfigError
from core.providers.hosted.cohere import CohereReranker
from core.providers.sentence_transformer import SentenceTransformerReranker
from langchain_rerankers import RerankCompressor
from tests.support.adapter_support import BEST_ID, CORPUS, PLUGIN, QUERY, KeywordReranker
from tests.support.fake_api import FakeApiServer, word_overlap
from tests.support.hosted_support import FAST

SECRET = "sk-peer-shaped-secret"


@pytest.fixture(scope="module")
def corpus() -> list[Document]:
    return [Document(page_content=text, id=doc_id, metadata=dict(meta)) for doc_id, text, meta in CORPUS]


@pytest.fixture(scope="module")
def bm25(corpus: list[Document]) -> BM25Retriever:
    return BM25Retriever.from_documents(corpus, k=6)


def ids(docs: list[Document]) -> list[str]:
    return [str(d.id) for d in docs]


def overlap_order(docs: list[Document], top_n: int) -> list[str]:
    """What the fake Cohere server's word-overlap scores put first."""
    ranked = sorted(docs, key=lambda d: -word_overlap(QUERY, d.page_content))
    return ids(ranked)[:top_n]


@pytest.mark.parametrize("model", ["cohere:rerank-v3.5", "rerank-v3.5"])
def test_langchain_cohere_call_shape(
    model: str, server: FakeApiServer, bm25: BM25Retriever, corpus: list[Document]
) -> None:
    """``CohereRerank(model=..., top_n=3, cohere_api_key=..., base_url=...)`` with the class name changed."""
    compressor = RerankCompressor(model=model, top_n=3, cohere_api_key=SECRET, base_url=server.url, **FAST)
    assert isinstance(compressor.reranker, CohereReranker)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25)
    out = retriever.invoke(QUERY)
    assert ids(out) == overlap_order(bm25.invoke(QUERY), 3)
    assert all(0.0 <= d.metadata["relevance_score"] <= 1.0 for d in out)
    (request,) = server.requests_for("cohere")
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.body["model"] == "rerank-v3.5"


def test_provider_and_model_keywords_in_an_lcel_chain(bm25: BM25Retriever) -> None:
    compressor = RerankCompressor(provider="sentence_transformer", model="embedded", top_n=3)
    assert isinstance(compressor.reranker, SentenceTransformerReranker)
    assert compressor.reranker.config.model == "embedded"
    chain = RunnableParallel(documents=bm25, query=RunnablePassthrough()) | compressor
    out = chain.invoke(QUERY)
    spec_form = RerankCompressor(
        reranker={"provider": "sentence_transformer", "config": {"model": "embedded"}}
    )
    want = spec_form.compress_documents(bm25.invoke(QUERY), QUERY)
    assert ids(out) == ids(list(want)) and out[0].id == BEST_ID
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
        [d.metadata["relevance_score"] for d in want], abs=1e-6
    )


def test_cross_encoder_reranker_call_shape(
    tiny_cross_encoder: Path, bm25: BM25Retriever, corpus: list[Document]
) -> None:
    """LangChain's ``CrossEncoderReranker(model=HuggingFaceCrossEncoder(...), top_n=3)``, class renamed."""
    encoder = HuggingFaceCrossEncoder(model_name=str(tiny_cross_encoder), model_kwargs={"device": "cpu"})
    peer = CrossEncoderReranker(model=encoder, top_n=3)
    ours = RerankCompressor(model=encoder, top_n=3)
    assert isinstance(ours.reranker, SentenceTransformerReranker)
    assert (ours.reranker.config.model, ours.reranker.config.device) == (str(tiny_cross_encoder), "cpu")
    want = peer.compress_documents(corpus, QUERY)
    retriever = ContextualCompressionRetriever(base_compressor=ours, base_retriever=bm25)
    retrieved = bm25.invoke(QUERY)
    assert ids(retriever.invoke(QUERY)) == ids(list(peer.compress_documents(retrieved, QUERY)))
    assert ids(list(ours.compress_documents(corpus, QUERY))) == ids(list(want))


def test_any_config_field_as_a_keyword_and_the_spec_forms(corpus: list[Document]) -> None:
    flat = RerankCompressor(provider=PLUGIN, top_k=9, normalize=False, top_n=2)
    assert isinstance(flat.reranker, KeywordReranker)
    assert (flat.reranker.config.top_k, flat.reranker.config.normalize, flat.top_n) == (9, False, 2)
    as_string = RerankCompressor(reranker=f"{PLUGIN.upper()}", top_n=1)
    assert ids(list(as_string.compress_documents(corpus, QUERY))) == [BEST_ID]
    extended = RerankCompressor(reranker={"provider": PLUGIN}, api_key=SECRET, model="kw")
    assert extended.reranker.config.model == "kw"
    assert extended.reranker.config.api_key.get_secret_value() == SECRET  # type: ignore[attr-defined]
    instance = KeywordReranker()
    assert RerankCompressor(reranker=instance).reranker is instance
    default = RerankCompressor()
    assert isinstance(default.reranker, SentenceTransformerReranker)
    assert default.reranker.config.model == "embedded"


def test_unknown_keywords_name_the_key() -> None:
    with pytest.raises(ValidationError, match=r"unknown keyword\(s\) \['modle'\] for RerankCompressor"):
        RerankCompressor(provider=PLUGIN, modle="x")
    with pytest.raises(ValidationError, match="user_agent.*client name"):
        RerankCompressor(model="cohere:rerank-v3.5", cohere_api_key=SECRET, user_agent="langchain")
    with pytest.raises(ValidationError, match="'cohere_api_key' is a cohere setting"):
        RerankCompressor(provider="huggingface", cohere_api_key=SECRET)
    with pytest.raises(ValidationError, match="model 'some-model' names no provider"):
        RerankCompressor(model="some-model")
    with pytest.raises(ValidationError, match="built reranker"):
        RerankCompressor(reranker=KeywordReranker(), top_k=3)
    with pytest.raises(ValidationError, match="top_n"):
        RerankCompressor(provider=PLUGIN, top_n=-1)
    with pytest.raises(ConfigError, match="unknown reranker provider 'nope'"):
        RerankCompressor.from_config({"provider": "nope"})


def test_keys_passed_flat_are_masked_everywhere(
    server: FakeApiServer, monkeypatch: pytest.MonkeyPatch, corpus: list[Document]
) -> None:
    compressor = RerankCompressor(
        model="rerank-v3.5", cohere_api_key=SECRET, base_url=server.url, top_n=2, **FAST
    )
    dumped = compressor.model_dump()
    assert dumped["reranker"]["config"]["api_key"] == "**********"
    for text in (repr(compressor), str(compressor), compressor.model_dump_json(), json.dumps(dumped)):
        assert SECRET not in text
    assert SECRET not in json.dumps(compressor.to_json(), default=str)
    monkeypatch.setenv("CO_API_KEY", "from-env")
    rebuilt = RerankCompressor(**dumped)
    assert rebuilt.reranker.config.api_key is None  # the mask is never used as a key
    assert rebuilt.reranker.config.model == "rerank-v3.5" and rebuilt.top_n == 2
    rebuilt.compress_documents(corpus, QUERY)
    assert server.requests_for("cohere")[-1].headers["authorization"] == "Bearer from-env"
