"""LLM rerankers through the LangChain compressor and the LlamaIndex postprocessor: the same scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from core.registry import create_reranker
from langchain_rerankers import RerankCompressor
from llamaindex_rerankers import RerankPostprocessor
from tests.support.model_factory import QUERY, TEXTS

#: (provider, checkpoint key, extra config) of every way an LLM reranker is reached.
ROUTES = [
    ("huggingface", "qwen3-reranker", {}),
    ("huggingface", "zerank", {}),
    ("huggingface", "mxbai-rerank-v2", {}),
    ("huggingface", "bge-reranker-v2-gemma", {}),
    ("huggingface", "seq-cls", {}),
    ("sentence_transformer", "qwen3-reranker", {}),
    ("zero_entropy", "zerank", {"local": True}),
]


def spec_of(route: tuple[str, str, dict[str, Any]], checkpoints: dict[str, Path]) -> dict[str, Any]:
    provider, key, extra = route
    return {"provider": provider, "config": {"model": str(checkpoints[key]), "dtype": "float32", **extra}}


def direct_scores(spec: dict[str, Any]) -> dict[str, float]:
    out = create_reranker(spec).rerank(QUERY, TEXTS)
    return {row["text"]: row["rerank_score"] for row in out}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]}-{r[1]}")
async def test_langchain_compressor_gives_the_rerankers_scores(
    llm_checkpoints: dict[str, Path], route: tuple[str, str, dict[str, Any]]
) -> None:
    spec = spec_of(route, llm_checkpoints)
    expected = direct_scores(spec)
    compressor = RerankCompressor(reranker=spec, top_n=None)
    docs = [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(TEXTS)]
    for out in (
        compressor.compress_documents(docs, QUERY),
        await compressor.acompress_documents(docs, QUERY),
    ):
        scores = {d.page_content: d.metadata["relevance_score"] for d in out}
        assert scores == pytest.approx(expected, abs=1e-6)
        assert [d.metadata["relevance_score"] for d in out] == sorted(expected.values(), reverse=True)
        assert sorted(d.metadata["i"] for d in out) == list(range(len(TEXTS)))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]}-{r[1]}")
def test_llamaindex_postprocessor_gives_the_rerankers_scores(
    llm_checkpoints: dict[str, Path], route: tuple[str, str, dict[str, Any]]
) -> None:
    spec = spec_of(route, llm_checkpoints)
    expected = direct_scores(spec)
    postprocessor = RerankPostprocessor(spec, top_n=None, metadata_mode=MetadataMode.NONE)
    nodes = [NodeWithScore(node=TextNode(text=t, metadata={"i": i}), score=0.5) for i, t in enumerate(TEXTS)]
    out = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    assert {n.node.get_content(): n.score for n in out} == pytest.approx(expected, abs=1e-6)
    assert [n.score for n in out] == sorted(expected.values(), reverse=True)
