"""LlamaIndex adapter: ``RerankPostprocessor`` puts any rerank-layer reranker in a query engine."""

from core.deps import require

require("llama_index.core", extra="llamaindex", provider="llamaindex")

from llamaindex_rerankers.postprocessor import RETRIEVAL_SCORE_KEY, RerankPostprocessor  # noqa: E402

__all__ = ["RETRIEVAL_SCORE_KEY", "RerankPostprocessor"]
