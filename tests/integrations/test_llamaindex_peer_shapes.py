"""RerankPostprocessor built the way llama-index's rerankers are, and nodes a cascade eliminated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor import SentenceTransformerRerank, SimilarityPostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from rank_bm25 import BM25Okapi

from core.errors import ConfigError
from core.providers.hosted.cohere import CohereReranker
from core.providers.huggingface import HuggingFaceReranker
from core.providers.llm.reranker import LLMReranker
from core.providers.sentence_transformer import SentenceTransformerReranker
from llamaindex_rerankers import RerankPostprocessor
from tests.support.adapter_support import BEST_ID, CORPUS, PLUGIN, QUERY
from tests.support.fake_api import FakeApiServer, word_overlap
from tests.support.hosted_support import FAST

SECRET = "sk-peer-shaped-secret"
TOP_K = 6


class BM25Retriever(BaseRetriever):
    """A first stage whose scores are on BM25's scale (well above 1)."""

    def __init__(self, nodes: list[TextNode]) -> None:
        super().__init__()
        self._nodes = nodes
        self._bm25 = BM25Okapi([self._tokens(n.text) for n in nodes])

    @staticmethod
    def _tokens(text: str) -> list[str]:
        return [w.strip(".,?!").lower() for w in text.split()]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        scores = self._bm25.get_scores(self._tokens(query_bundle.query_str))
        ranked = sorted(zip(self._nodes, scores, strict=True), key=lambda p: -p[1])[:TOP_K]
        return [NodeWithScore(node=node, score=float(score)) for node, score in ranked]


def bm25() -> BM25Retriever:
    """A retriever over fresh nodes (llama-index's own rerankers write into the nodes they get)."""
    return BM25Retriever([TextNode(id_=i, text=text, metadata=dict(meta)) for i, text, meta in CORPUS])


@pytest.fixture
def retriever() -> BM25Retriever:
    return bm25()


def engine(retriever: BaseRetriever, *postprocessors: object) -> RetrieverQueryEngine:
    return RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), node_postprocessors=list(postprocessors))


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.node_id for n in nodes]


def test_sentence_transformer_rerank_call_shape(tiny_cross_encoder: Path, retriever: BM25Retriever) -> None:
    """``SentenceTransformerRerank(model=..., top_n=2, device=..., keep_retrieval_score=True)``, renamed."""
    kwargs = {"model": str(tiny_cross_encoder), "top_n": 2, "device": "cpu", "keep_retrieval_score": True}
    peer = SentenceTransformerRerank(**kwargs)  # type: ignore[arg-type]
    ours = RerankPostprocessor(**kwargs)  # type: ignore[arg-type]
    assert isinstance(ours.reranker, SentenceTransformerReranker)
    assert (ours.reranker.config.device, ours.top_n, ours.keep_retrieval_score) == ("cpu", 2, True)
    want = engine(bm25(), peer).query(QUERY).source_nodes
    got = engine(retriever, ours).query(QUERY).source_nodes
    assert ids(got) == ids(want)
    first_stage = {n.node.node_id: n.score for n in retriever.retrieve(QUERY)}
    assert [n.node.metadata["retrieval_score"] for n in got] == [first_stage[i] for i in ids(got)]


def test_provider_model_device_keywords(retriever: BM25Retriever) -> None:
    ours = RerankPostprocessor(provider="sentence_transformer", model="embedded", top_n=2, device="cpu")
    spec_form = RerankPostprocessor({"provider": "sentence_transformer", "config": {"model": "embedded"}})
    got = engine(retriever, ours).query(QUERY).source_nodes
    want = engine(retriever, spec_form).query(QUERY).source_nodes
    assert ids(got) == ids(want) and ids(got)[0] == BEST_ID
    assert [n.score for n in got] == pytest.approx([n.score for n in want], abs=1e-6)


def test_model_spec_string_with_a_path(tiny_cross_encoder: Path, retriever: BM25Retriever) -> None:
    ours = RerankPostprocessor(model=f"huggingface:{tiny_cross_encoder}", top_n=2)
    assert isinstance(ours.reranker, HuggingFaceReranker)
    assert ours.reranker.config.model == str(tiny_cross_encoder)
    got = engine(retriever, ours).query(QUERY).source_nodes
    assert len(got) == 2 and all(0.0 <= (n.score or -1) <= 1.0 for n in got)


@pytest.mark.parametrize("model", ["rerank-v3.5", "cohere:rerank-v3.5"])
async def test_cohere_rerank_call_shape(model: str, server: FakeApiServer, retriever: BM25Retriever) -> None:
    """llama-index's ``CohereRerank(model=..., api_key=..., top_n=2, base_url=..., max_retries=...)``."""
    ours = RerankPostprocessor(model=model, api_key=SECRET, top_n=2, base_url=server.url, **FAST)
    assert isinstance(ours.reranker, CohereReranker)
    candidates = retriever.retrieve(QUERY)
    want = sorted(ids(candidates), key=lambda i: -word_overlap(QUERY, dict((c[0], c[1]) for c in CORPUS)[i]))
    for response in (engine(retriever, ours).query(QUERY), await engine(retriever, ours).aquery(QUERY)):
        assert ids(response.source_nodes) == want[:2]
    assert {r.headers["authorization"] for r in server.requests_for("cohere")} == {f"Bearer {SECRET}"}


def test_llm_rerank_shape_maps_to_the_llm_reranker(server: FakeApiServer, retriever: BM25Retriever) -> None:
    """LLMRerank's ``llm`` is an object; the flat equivalent names the model and endpoint."""
    with pytest.raises(ConfigError, match="llm.*provider='llm_reranker'"):
        RerankPostprocessor(llm=MockLLM(), top_n=2)
    with pytest.raises(ConfigError, match="choice_batch_size"):
        RerankPostprocessor(provider="llm_reranker", choice_batch_size=5)
    ours = RerankPostprocessor(
        provider="llm_reranker", model="gpt-4o-mini", api_key=SECRET, base_url=server.url + "/v1", top_n=1
    )
    assert isinstance(ours.reranker, LLMReranker)
    assert ids(engine(retriever, ours).query(QUERY).source_nodes) == [BEST_ID]


def test_unknown_keywords_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown keyword\(s\) \['devise'\] for RerankPostprocessor"):
        RerankPostprocessor(provider="sentence_transformer", model="embedded", devise="cpu")
    with pytest.raises(ConfigError, match=r"\['topn'\]"):
        RerankPostprocessor({"provider": PLUGIN}, topn=2)
    with pytest.raises(ConfigError, match="model 'stsb' names no provider"):
        RerankPostprocessor(model="stsb")
    with pytest.raises(ConfigError, match="not both"):
        RerankPostprocessor({"provider": PLUGIN}, provider=PLUGIN)
    default = RerankPostprocessor(top_n=1)
    assert isinstance(default.reranker, SentenceTransformerReranker)
    assert default.reranker.config.model == "embedded"


def test_keys_passed_flat_are_masked_everywhere(
    server: FakeApiServer, monkeypatch: pytest.MonkeyPatch, retriever: BM25Retriever
) -> None:
    ours = RerankPostprocessor(model="rerank-v3.5", api_key=SECRET, base_url=server.url, top_n=3, **FAST)
    data = ours.to_dict()
    assert data["reranker"]["config"]["api_key"] == "**********"
    for text in (repr(ours), str(ours), ours.to_json(), ours.model_dump_json(), json.dumps(data)):
        assert SECRET not in text
    monkeypatch.setenv("CO_API_KEY", "from-env")
    rebuilt = RerankPostprocessor.from_json(ours.to_json())
    assert rebuilt.reranker.config.api_key is None and rebuilt.top_n == 3  # type: ignore[attr-defined]
    engine(retriever, rebuilt).query(QUERY)
    assert server.requests_for("cohere")[-1].headers["authorization"] == "Bearer from-env"


def test_a_cascade_eliminated_node_never_outranks_a_reranked_one(retriever: BM25Retriever) -> None:
    """Eliminated nodes lose their first-stage score (BM25's scale) so a later cutoff does not keep them."""
    cascade = {
        "provider": "cascade",
        "config": {"stages": [{"provider": PLUGIN, "keep": 2}, {"provider": PLUGIN}]},
    }
    candidates = retriever.retrieve(QUERY)
    assert max(n.score or 0 for n in candidates) > 1  # a first-stage scale above the rerank scores
    rerank = RerankPostprocessor(cascade, top_n=None, keep_retrieval_score=True)

    out = rerank.postprocess_nodes(candidates, query_str=QUERY)
    reranked, eliminated = out[:2], out[2:]
    assert len(eliminated) == TOP_K - 2
    assert all(n.score is not None and 0.0 <= n.score <= 1.0 for n in reranked)
    assert all(n.score is None for n in eliminated)
    assert all("dropped by cascade stage 0" in n.node.metadata["rerank_error"] for n in eliminated)
    first_stage = {n.node.node_id: n.score for n in candidates}
    assert all(n.node.metadata["retrieval_score"] == first_stage[n.node.node_id] for n in out)

    response = engine(retriever, rerank, SimilarityPostprocessor(similarity_cutoff=0.0)).query(QUERY)
    assert ids(response.source_nodes) == ids(reranked)
