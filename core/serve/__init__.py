"""``rerank-layer serve``: one reranker behind the Cohere / Jina rerank HTTP API (FastAPI under uvicorn).

Needs the ``serve`` extra (``pip install 'rerank-layer[serve]'``). See docs/serve.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.deps import require
from core.serve.settings import API_KEY_ENV, SERVE, ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from core.base import BaseReranker
    from core.specs import Spec

__all__ = ["API_KEY_ENV", "ServeSettings", "create_app"]


def create_app(reranker: BaseReranker | Spec, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving ``reranker`` (a reranker or a spec); MissingDependencyError without the extra."""
    for module in ("fastapi", "prometheus_client"):
        require(module, extra="serve", provider=SERVE)
    from core.serve.app import build_app

    return build_app(reranker, settings)
