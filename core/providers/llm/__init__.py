"""The ``llm_reranker`` provider: a chat LLM scores relevance (pointwise, logprobs or listwise)."""

from core.providers.llm.config import LLMRerankerConfig
from core.providers.llm.pointwise import NEUTRAL_SCORE
from core.providers.llm.reranker import LLMReranker

__all__ = ["NEUTRAL_SCORE", "LLMReranker", "LLMRerankerConfig"]
