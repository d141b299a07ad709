"""rerank-layer core: one reranking contract, five providers, one pipeline."""

from core.base import BaseReranker
from core.config import RerankerConfig
from core.errors import ConfigError, InvalidInputError, MissingDependencyError, ProviderError, RerankError
from core.local.models import EMBEDDED_MODEL_NAMES, clear_model_cache, embedded_model_path
from core.normalize import SCALE_RULES, ScoreScale
from core.registry import available_providers, create_reranker, get_provider_class, register_provider
from core.results import RankedItem, Ranking, RerankedDocuments, Scores

__all__ = [
    "EMBEDDED_MODEL_NAMES",
    "SCALE_RULES",
    "BaseReranker",
    "ConfigError",
    "InvalidInputError",
    "MissingDependencyError",
    "ProviderError",
    "RankedItem",
    "Ranking",
    "RerankError",
    "RerankedDocuments",
    "RerankerConfig",
    "ScoreScale",
    "Scores",
    "available_providers",
    "clear_model_cache",
    "create_reranker",
    "embedded_model_path",
    "get_provider_class",
    "register_provider",
]

__version__ = "0.1.0"
