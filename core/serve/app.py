"""The FastAPI application: service, routes, middlewares and error answers, wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

import core
from core.base import BaseReranker
from core.registry import create_reranker
from core.serve.errors import HttpError, validation_error
from core.serve.metrics import ServeMetrics
from core.serve.middleware import Admission, BearerAuth, BodyLimit, Gate, Instrumentation
from core.serve.routes import OPEN_PATHS, RERANK_PATHS, ROUTES, build_router
from core.serve.service import RerankService
from core.serve.settings import ServeSettings
from core.specs import Spec

logger = logging.getLogger("rerank_layer.serve")


def build_app(reranker: BaseReranker | Spec, settings: ServeSettings | None = None) -> FastAPI:
    """An ASGI app serving ``reranker`` (a reranker or any spec ``create_reranker`` takes).

    The model loads in the background when the app starts (``/health`` answers 503 until then);
    on shutdown, queued requests are scored before the app stops.
    """
    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    gate = Gate(settings.max_queue)
    service = RerankService(create_reranker(reranker), settings, metrics, gate)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="rerank-layer",
        version=core.__version__,
        summary="One reranker behind the Cohere / Jina rerank API.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.include_router(build_router(service, metrics))

    async def http_error(_: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, HttpError) else validation_error(list(getattr(exc, "errors", list)()))
        metrics.errors.labels(error.reason).inc()
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    async def internal_error(_: Request, exc: Exception) -> Response:
        logger.exception("unexpected error while serving a request", exc_info=exc)
        metrics.errors.labels("internal").inc()
        return JSONResponse({"message": f"internal error: {type(exc).__name__}"}, status_code=500)

    app.add_exception_handler(HttpError, http_error)
    app.add_exception_handler(RequestValidationError, http_error)
    app.add_exception_handler(Exception, internal_error)
    # Added innermost first: a request meets Instrumentation, then BearerAuth, Admission, BodyLimit.
    app.add_middleware(
        BodyLimit, limit=settings.max_body_bytes, timeout=settings.request_timeout, metrics=metrics
    )
    app.add_middleware(Admission, gate=gate, metrics=metrics, paths=RERANK_PATHS)
    app.add_middleware(BearerAuth, key=settings.api_key, metrics=metrics, open_paths=OPEN_PATHS)
    app.add_middleware(Instrumentation, metrics=metrics, routes=ROUTES)
    return app
