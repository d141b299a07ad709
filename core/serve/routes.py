"""The HTTP routes: Cohere v2 rerank, Jina / vLLM rerank (``/v1/rerank``, ``/rerank``), health, metrics."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from core.results import Ranking
from core.serve.batching import Timing
from core.serve.metrics import ServeMetrics
from core.serve.middleware import ARRIVAL
from core.serve.schemas import (
    ApiVersion,
    BilledUnits,
    CohereRerankRequest,
    CohereRerankResponse,
    JinaRerankRequest,
    JinaRerankResponse,
    Meta,
    Result,
    Tokens,
    Usage,
)
from core.serve.service import RerankService

RERANK_PATHS = ("/v2/rerank", "/v1/rerank", "/rerank")
OPEN_PATHS = ("/health",)
ROUTES = (*RERANK_PATHS, *OPEN_PATHS, "/metrics")

#: Documents per Cohere search unit.
DOCUMENTS_PER_SEARCH_UNIT = 100

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text}
    for status, text in {
        401: "missing or wrong bearer key",
        404: "another model than the served one",
        413: "too many documents or too large a body",
        422: "invalid field (named in the message)",
        429: "server busy (Retry-After)",
        502: "the reranker failed (on_error='raise')",
        503: "model loading, or reranker unavailable",
        504: "request timeout",
    }.items()
}


def meta(ranking: Ranking, documents: int, version: str) -> Meta:
    """Cohere's meta: billed search units (the provider's, else one per 100 documents), tokens, warnings."""
    units = ranking.usage.get("search_units", math.ceil(documents / DOCUMENTS_PER_SEARCH_UNIT))
    fields: dict[str, Any] = {
        "api_version": ApiVersion(version=version),
        "billed_units": BilledUnits(search_units=units),
    }
    if "total_tokens" in ranking.usage:
        fields["tokens"] = Tokens(input_tokens=ranking.usage["total_tokens"])
    if ranking.failed:
        fields["warnings"] = [f"reranking failed, documents kept in their input order: {ranking.error}"]
    return Meta(**fields)


def results(ranking: Ranking, documents: Sequence[str] | None) -> list[Result]:
    """Results best first; with ``documents``, each result echoes its document's text."""
    out = []
    for item in ranking.items:
        fields: dict[str, Any] = {"index": item.index, "relevance_score": item.score}
        if documents is not None:
            fields["document"] = {"text": documents[item.index]}
        out.append(Result(**fields))
    return out


def _json(body: CohereRerankResponse | JinaRerankResponse, timing: Timing, request: Request) -> JSONResponse:
    """The answer, with a ``Server-Timing`` header (ms): time in model calls, and in the server so far.

    ``total`` runs from the request's arrival (before its body was read) to this answer's serialisation.
    """
    started = getattr(request.state, ARRIVAL, None) or time.perf_counter()
    answer = JSONResponse(body.model_dump(mode="json", exclude_unset=True))
    total = (time.perf_counter() - started) * 1000
    answer.headers["Server-Timing"] = f"model;dur={timing.model * 1000:.2f}, total;dur={total:.2f}"
    return answer


def build_router(service: RerankService, metrics: ServeMetrics) -> APIRouter:
    """The routes of one server, bound to its service and metrics."""
    router = APIRouter()

    @router.post(
        "/v2/rerank", response_model=CohereRerankResponse, responses=ERROR_RESPONSES, tags=["rerank"]
    )
    async def rerank_v2(body: CohereRerankRequest, request: Request) -> Response:
        """Cohere rerank v2: results best first, ``relevance_score`` = the layer's ``rerank_score``."""
        timing = Timing()
        service.check_model(body.model)
        ranking = await service.rank(body.query, body.documents, body.top_n, body.max_tokens_per_doc, timing)
        answer = CohereRerankResponse(
            id=str(uuid.uuid4()), results=results(ranking, None), meta=meta(ranking, len(body.documents), "2")
        )
        return _json(answer, timing, request)

    async def rerank_v1(body: JinaRerankRequest, request: Request) -> Response:
        """Jina / vLLM rerank (Cohere v1 too): documents echoed unless ``return_documents`` is false."""
        timing = Timing()
        service.check_model(body.model)
        top_n = body.top_n or None  # 0 means all (vLLM)
        ranking = await service.rank(body.query, body.documents, top_n, body.max_tokens_per_doc, timing)
        fields: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "model": service.model_name,
            "results": results(ranking, None if body.return_documents is False else body.documents),
            "meta": meta(ranking, len(body.documents), "1"),
        }
        if "total_tokens" in ranking.usage:
            fields["usage"] = Usage(total_tokens=int(ranking.usage["total_tokens"]))
        return _json(JinaRerankResponse(**fields), timing, request)

    for path in ("/v1/rerank", "/rerank"):
        router.add_api_route(
            path,
            rerank_v1,
            methods=["POST"],
            response_model=JinaRerankResponse,
            responses=ERROR_RESPONSES,
            tags=["rerank"],
        )

    @router.get("/health", tags=["operations"])
    async def health() -> Response:
        """200 once the model is loaded; 503 while it loads or if loading failed."""
        if service.state == "ready":
            return JSONResponse({"status": "ok", "model": service.model_name})
        # No error text here: /health needs no key, and a load error can name paths or hosts
        # (the log and the key-protected rerank routes carry it).
        return JSONResponse({"status": service.state, "model": service.model_name}, status_code=503)

    @router.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus text: requests, documents, latency, batch sizes, errors, queue depth, readiness."""
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    return router
