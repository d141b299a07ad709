"""A real uvicorn server on a free loopback port in a thread, toy rerankers to drive it, metric reading."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from core.base import BaseReranker
from core.errors import ProviderError
from core.serve import ServeSettings, create_app
from tests.support.toy_rerankers import OverlapReranker

KEY = "serve-test-key"


class RunningServer:
    """``create_app(reranker, settings)`` under uvicorn on 127.0.0.1, a free port, a daemon thread."""

    def __init__(self, reranker: Any, **settings: Any) -> None:
        self.settings = ServeSettings(**{"api_key": None, **settings})
        self.app = create_app(reranker, self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=30
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def service(self) -> Any:
        return self.app.state.service

    def headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key.get_secret_value()}"} if key is not None else {}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/health").status_code != 200:
            assert time.monotonic() < deadline, "the model did not load"
            time.sleep(0.05)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics: ``name{label="v",...}`` -> value."""
        text = httpx.get(f"{self.url}/metrics", headers=self.headers()).text
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "uvicorn did not stop"


def free_port() -> int:
    """A loopback port free now (for a server started in another process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class GatedReranker(OverlapReranker):
    """Word-overlap scores through ``score_many`` (so the server batches it), with switches for tests.

    ``loaded``: ``warmup`` waits for it. ``gate``: a group holding a query that starts with
    "block" waits for it. A query starting with "bad" fails the whole group; "slow" sleeps
    ``delay`` s. ``groups`` records the queries of every ``score_many`` call, ``finished`` counts them.
    """

    provider: ClassVar[str] = "gated"

    def __init__(
        self, *args: Any, delay: float = 0.0, warmup_error: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loaded = threading.Event()
        self.loaded.set()
        self.gate = threading.Event()
        self.delay = delay
        self.warmup_error = warmup_error
        self.groups: list[list[str]] = []
        self.finished = 0

    def warmup(self) -> None:
        self.loaded.wait(timeout=60)
        if self.warmup_error is not None:
            raise OSError(self.warmup_error)

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        queries = [query for query, _ in requests]
        self.groups.append(queries)
        try:
            if any(q.startswith("block") for q in queries):
                self.gate.wait(timeout=60)
            if any(q.startswith("slow") for q in queries):
                time.sleep(self.delay)
            if any(q.startswith("bad") for q in queries):
                raise ValueError("this group holds a bad request")
            return [self.score(query, texts) for query, texts in requests]
        finally:
            self.finished += 1


class UnavailableReranker(BaseReranker):
    """Fails like an API in an outage that asks to retry later."""

    provider: ClassVar[str] = "unavailable"

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise ProviderError(
            "upstream overloaded", provider=self.provider, status=503, retryable=True, retry_after=7
        )
