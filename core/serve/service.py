"""The served reranker: loading it, ranking one request through the pipeline, and HTTP error mapping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from core.base import BaseReranker
from core.errors import InvalidInputError, ProviderError, RerankError
from core.results import Ranking
from core.serve.batching import REQUEST_TIMING, BatchQueue, QueuedReranker, Timing, batches_requests
from core.serve.errors import HttpError, provider_failure, retry_after
from core.serve.metrics import ServeMetrics
from core.serve.middleware import Gate
from core.serve.settings import ServeSettings

logger = logging.getLogger("rerank_layer.serve")

State = Literal["loading", "ready", "failed"]


class RerankService:
    """One reranker behind the routes: loaded in the background, each request ranked with a timeout.

    A reranker that scores several requests together (a local model) is fed through a
    ``BatchQueue``; any other (API, LLM, cascade) is called directly, concurrently.
    """

    def __init__(
        self, reranker: BaseReranker, settings: ServeSettings, metrics: ServeMetrics, gate: Gate
    ) -> None:
        self.reranker = reranker
        self.settings = settings
        self.metrics = metrics
        self.gate = gate
        self.model_name = settings.served_model_name or reranker.model_name
        self.state: State = "loading"
        self.load_error: str | None = None
        self.queue: BatchQueue | None = None
        self._scorer: BaseReranker = reranker
        self._loading: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start loading the model (the server answers meanwhile: /health says loading) and the queue."""
        if batches_requests(self.reranker):
            self.queue = BatchQueue(
                self.reranker.score_many,
                max_pairs=self.settings.max_batch_pairs,
                max_wait=self.settings.max_wait_ms / 1000,
                arriving=lambda: self.gate.active > (self.queue.outstanding if self.queue else 0),
                on_batch=self.metrics.observe_batch,
            )
            self.queue.start()
            self._scorer = QueuedReranker(self.reranker, self.queue)
        self._loading = asyncio.get_running_loop().create_task(self._load(), name="rerank-model-load")

    async def _load(self) -> None:
        try:
            await asyncio.to_thread(self.reranker.warmup)
        except Exception as exc:
            self.state, self.load_error = "failed", f"{type(exc).__name__}: {exc}"
            logger.error("loading the reranker failed: %s", self.load_error)
            return
        self.state = "ready"
        self.metrics.ready.set(1)
        logger.info("reranker ready: %r served as %r", self.reranker, self.model_name)

    async def stop(self) -> None:
        """Finish what is queued, then stop (uvicorn has already let in-flight requests finish)."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self.queue is not None:
            await self.queue.stop()
        self.metrics.ready.set(0)

    # --- one request ---------------------------------------------------------------------
    def check_model(self, model: str | None) -> None:
        """404 unless ``model`` is None or the served model's name."""
        if model is not None and model != self.model_name:
            message = f"model {model!r} is not served here; this server serves {self.model_name!r}"
            raise HttpError(404, message, reason="unknown_model")

    def check_ready(self) -> None:
        """503 (with Retry-After while loading) until the model is loaded."""
        if self.state == "loading":
            raise HttpError(503, "the model is still loading", reason="not_ready", headers=retry_after(1))
        if self.state == "failed":
            raise HttpError(503, f"the model failed to load: {self.load_error}", reason="not_ready")

    def check_size(self, documents: Sequence[str]) -> None:
        """413 for more documents than the server takes."""
        limit = self.settings.max_documents
        if len(documents) > limit:
            message = f"documents: {len(documents)} given, this server takes at most {limit} per request"
            raise HttpError(413, message, reason="too_large")

    async def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_n: int | None,
        max_tokens_per_doc: int | None,
        timing: Timing | None = None,
    ) -> Ranking:
        """The request through the pipeline; a timeout, bad input or provider failure as an HttpError.

        With the reranker's ``on_error="fail_open"`` a failing provider gives a ranking in
        first-stage order (``ranking.failed``); with ``"raise"`` it gives 502 or 503. ``timing``
        receives the time spent in model calls.
        """
        self.check_ready()
        self.check_size(documents)
        token = REQUEST_TIMING.set(timing)  # the scoring task below starts with a copy of this context
        try:
            ranking = await asyncio.wait_for(
                self._rank(query, documents, top_n, max_tokens_per_doc), self.settings.request_timeout
            )
        except asyncio.TimeoutError:
            message = f"reranking took longer than the server's limit of {self.settings.request_timeout:g} s"
            raise HttpError(504, message, reason="timeout") from None
        except InvalidInputError as exc:
            raise HttpError(422, f"invalid request: {exc}", reason="invalid") from exc
        except ProviderError as exc:
            raise provider_failure(exc) from exc
        except RerankError as exc:  # a configuration problem surfacing at call time
            raise HttpError(500, f"reranker error: {exc}", reason="internal") from exc
        finally:
            REQUEST_TIMING.reset(token)
        if ranking.failed:
            self.metrics.errors.labels("fail_open").inc()
        self.metrics.documents.inc(len(documents))
        return ranking

    async def _rank(
        self, query: str, documents: Sequence[str], top_n: int | None, max_tokens_per_doc: int | None
    ) -> Ranking:
        texts = list(documents)
        if max_tokens_per_doc is not None:
            texts = await asyncio.to_thread(self.cut_documents, texts, max_tokens_per_doc)
        if self.queue is not None:  # the queue reports the model time
            return await self._scorer.arank(query, texts, top_k=top_n)
        started = time.perf_counter()
        try:
            return await self._scorer.arank(query, texts, top_k=top_n)
        finally:
            timing = REQUEST_TIMING.get()
            if timing is not None:
                timing.model += time.perf_counter() - started

    def cut_documents(self, texts: list[str], max_tokens: int) -> list[str]:
        """Each text cut to its first ``max_tokens`` tokens of the served model's tokenizer.

        A reranker without a local tokenizer (API, LLM, cascade) has its texts cut to
        ``max_tokens`` whitespace-separated words instead.
        """
        tokenizer = _tokenizer_of(self.reranker)
        if tokenizer is None:
            return [" ".join(t.split()[:max_tokens]) if len(t.split()) > max_tokens else t for t in texts]
        enc = tokenizer(
            texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        out = []
        for text, offsets in zip(texts, enc["offset_mapping"], strict=True):
            out.append(text if len(offsets) <= max_tokens else text[: offsets[max_tokens - 1][1]])
        return out


def _tokenizer_of(reranker: BaseReranker) -> Any:
    """The fast tokenizer of a local model reranker (its loaded ``encoder``), else None."""
    tokenizer = getattr(getattr(reranker, "encoder", None), "tokenizer", None)
    return tokenizer if getattr(tokenizer, "is_fast", False) else None
