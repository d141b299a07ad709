"""Prometheus metrics of one server (its own registry, so several apps in a process stay apart)."""

from __future__ import annotations

from core.deps import require
from core.serve.settings import SERVE

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
PAIR_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServeMetrics:
    """Requests, documents, latency, batch sizes, errors, queue depth and readiness."""

    def __init__(self) -> None:
        prom = require("prometheus_client", extra="serve", provider=SERVE)
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter(
            "rerank_requests", "HTTP requests by route and status code.", ["route", "status"], registry=r
        )
        self.latency = prom.Histogram(
            "rerank_request_duration_seconds",
            "Time from a request's arrival to its answer, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.documents = prom.Counter("rerank_documents", "Documents reranked.", registry=r)
        self.batch_requests = prom.Histogram(
            "rerank_batch_requests",
            "Requests scored together in one model call.",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.batch_pairs = prom.Histogram(
            "rerank_batch_pairs",
            "(query, document) pairs scored in one model call.",
            buckets=PAIR_BUCKETS,
            registry=r,
        )
        self.errors = prom.Counter(
            "rerank_errors",
            "Requests refused, failed or answered in first-stage order, by reason.",
            ["reason"],
            registry=r,
        )
        self.queue_depth = prom.Gauge(
            "rerank_queue_depth", "Rerank requests in the server (waiting or being scored).", registry=r
        )
        self.ready = prom.Gauge("rerank_model_ready", "1 once the model is loaded, else 0.", registry=r)

    def observe_batch(self, requests: int, pairs: int) -> None:
        """Record one model call."""
        self.batch_requests.observe(requests)
        self.batch_pairs.observe(pairs)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), str(self._prom.CONTENT_TYPE_LATEST)
