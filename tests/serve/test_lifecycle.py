"""Start-up (not ready until the model is loaded), graceful shutdown, the CLI under SIGTERM, the extra."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cohere
import httpx
import pytest

from core.cli.main import main
from core.errors import MissingDependencyError
from tests.support.fake_api import DOCS, FakeApiServer, expected_order
from tests.support.model_factory import QUERY, TEXTS
from tests.support.serve_support import KEY, GatedReranker, RunningServer, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_health_and_requests_wait_for_the_model() -> None:
    reranker = GatedReranker()
    reranker.loaded.clear()  # warmup() blocks until the test lets it finish
    server = RunningServer(reranker)
    try:
        health = httpx.get(server.url + "/health")
        early = httpx.post(
            server.url + "/v2/rerank", json={"model": "gated", "query": QUERY, "documents": TEXTS}
        )
        assert health.status_code == 503 and health.json()["status"] == "loading"
        assert early.status_code == 503 and early.headers["retry-after"] == "1"
        assert server.metrics()["rerank_model_ready"] == 0
        reranker.loaded.set()
        server.wait_ready()
        assert httpx.get(server.url + "/health").json() == {"status": "ok", "model": "gated"}
        assert server.metrics()["rerank_model_ready"] == 1
        late = httpx.post(
            server.url + "/v2/rerank", json={"model": "gated", "query": QUERY, "documents": TEXTS}
        )
        assert late.status_code == 200
    finally:
        reranker.loaded.set()
        server.stop()


def test_a_model_that_fails_to_load_is_reported() -> None:
    server = RunningServer(GatedReranker(warmup_error="weights not found"))
    try:
        wait_until(lambda: server.service.state == "failed", what="the load to fail")
        health = httpx.get(server.url + "/health")
        answer = httpx.post(server.url + "/rerank", json={"query": QUERY, "documents": TEXTS})
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "message" not in health.json()  # /health needs no key: no error text there
        assert (
            answer.status_code == 503
            and "failed to load: OSError: weights not found" in answer.json()["message"]
        )
    finally:
        server.stop()


def test_graceful_shutdown_finishes_requests_in_flight() -> None:
    reranker = GatedReranker()
    server = RunningServer(reranker)
    answers: list[httpx.Response] = []
    body = {"model": "gated", "query": "block until shutdown", "documents": TEXTS}
    sender = threading.Thread(
        target=lambda: answers.append(httpx.post(server.url + "/v2/rerank", json=body, timeout=60))
    )
    sender.start()
    wait_until(lambda: len(reranker.groups) == 1, what="the request to reach the model")
    server.server.should_exit = True  # what SIGINT / SIGTERM do
    wait_until(lambda: _refused(server.url), what="the server to stop accepting")
    assert server.thread.is_alive()  # still finishing the request in flight
    reranker.gate.set()
    sender.join(60)
    server.thread.join(60)
    assert not server.thread.is_alive()
    assert answers[0].status_code == 200 and answers[0].json()["results"][0]["index"] == 0


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/health", timeout=5)
    except httpx.ConnectError:
        return True
    return False


def test_the_cli_serves_and_stops_on_sigterm(server: FakeApiServer) -> None:
    """The command line serving a hosted reranker (the fake Cohere API): no torch to import, a quick start."""
    port = free_port()
    env = {**os.environ, "RERANK_LAYER_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "core.cli.main", "serve", "--port", str(port), "--provider", "cohere",
        "--set", "api_key=upstream-key", "--set", f"base_url={server.url}", "--served-model-name", "proxy",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not _healthy(url):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        client = cohere.ClientV2(api_key=KEY, base_url=url, timeout=30)
        response = client.rerank(model="proxy", query="cat on mat", documents=DOCS, top_n=2)
        assert [r.index for r in response.results] == expected_order()[:2]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # uvicorn shuts down gracefully, then re-raises the signal: the exit status says SIGTERM
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert KEY not in out + err and "upstream-key" not in out + err
    (upstream,) = server.requests_for("cohere")
    assert upstream.body["query"] == "cat on mat"
    assert upstream.headers["authorization"] == "Bearer upstream-key"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_cli_names_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--max-queue", "0", "--reranker", "sentence_transformer"]) == 2
    assert "--max-queue" in capsys.readouterr().err


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.serve import create_app

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[serve\]"):
        create_app("sentence_transformer")
