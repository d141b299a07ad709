"""The ``llm_reranker`` provider: a chat LLM scores relevance (pointwise, logprobs or listwise)."""

from core.providers.llm.reranker import NEUTRAL_SCORE, LLMReranker, LLMRerankerConfig

__all__ = ["NEUTRAL_SCORE", "LLMReranker", "LLMRerankerConfig"]
