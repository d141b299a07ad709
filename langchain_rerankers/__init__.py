"""LangChain adapter: ``RerankCompressor`` puts any rerank-layer reranker behind LangChain's interfaces."""

from core.deps import require

require("langchain_core", extra="langchain", provider="langchain")

from langchain_rerankers.compressor import RELEVANCE_SCORE_KEY, RerankCompressor, RerankInput  # noqa: E402

__all__ = ["RELEVANCE_SCORE_KEY", "RerankCompressor", "RerankInput"]
