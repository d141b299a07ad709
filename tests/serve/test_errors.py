"""Every error status the server answers with, through real HTTP clients over loopback."""

from __future__ import annotations

import asyncio
import logging
import socket

import cohere
import httpx
import pytest
from pydantic import ValidationError

from core.serve import ServeSettings
from tests.serve.conftest import MODEL
from tests.support.model_factory import QUERY, TEXTS
from tests.support.serve_support import KEY, GatedReranker, RunningServer, UnavailableReranker, wait_until
from tests.support.toy_rerankers import FailingReranker, OverlapReranker

BODY = {"model": MODEL, "query": QUERY, "documents": TEXTS}


# --- 401: the bearer key -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}],
    ids=["missing", "wrong", "basic", "no-scheme"],
)
def test_401_without_the_right_bearer_key(tiny_server: RunningServer, headers: dict[str, str]) -> None:
    for path in ("/v2/rerank", "/rerank", "/metrics"):
        response = httpx.request(
            "GET" if path == "/metrics" else "POST", tiny_server.url + path, json=BODY, headers=headers
        )
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer <key>" in response.json()["message"]
    assert httpx.get(tiny_server.url + "/health").status_code == 200  # probes need no key


def test_401_through_the_cohere_sdk(tiny_server: RunningServer) -> None:
    client = cohere.ClientV2(api_key="not-the-key", base_url=tiny_server.url, timeout=30)
    with pytest.raises(cohere.UnauthorizedError):
        client.rerank(model=MODEL, query=QUERY, documents=TEXTS)


def test_the_key_is_never_logged_or_shown(
    tiny_server: RunningServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    with tiny_server.client() as http:
        assert http.post("/v2/rerank", json=BODY).status_code == 200
        metrics = http.get("/metrics").text
    httpx.post(tiny_server.url + "/v2/rerank", json=BODY, headers={"Authorization": f"Bearer {KEY}x"})
    monkeypatch.setenv("RERANK_LAYER_API_KEY", KEY)
    settings = ServeSettings()
    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY
    shown = [caplog.text, metrics, repr(settings), str(settings), settings.model_dump_json()]
    assert not any(KEY in text for text in shown)


# --- 413, 422: limits and validation -------------------------------------------------------------
def test_413_for_too_many_documents_or_too_large_a_body(tiny_server: RunningServer) -> None:
    with tiny_server.client() as http:
        many = http.post("/v2/rerank", json={**BODY, "documents": ["doc"] * 51})
        huge = http.post("/rerank", json={**BODY, "documents": ["word " * 20_000]})
        streamed = http.post(  # no Content-Length: counted as it arrives
            "/v2/rerank", content=iter([b'{"query": "q", "documents": ["', b"x" * 70_000, b'"]}'])
        )
    assert (
        many.status_code == 413
        and "51 given" in many.json()["message"]
        and "at most 50" in many.json()["message"]
    )
    assert huge.status_code == 413 and "65536 bytes" in huge.json()["message"]
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"query": "  "}, "query"),
        ({"query": None}, "query"),
        ({"documents": ["ok", 3]}, "documents.1"),
        ({"documents": "one string"}, "documents"),
        ({"top_n": 0}, "top_n"),
        ({"top_n": "2"}, "top_n"),
        ({"top_n": True}, "top_n"),
        ({"max_tokens_per_doc": 0}, "max_tokens_per_doc"),
        ({"model": ""}, "model"),
    ],
)
def test_422_names_the_field(tiny_server: RunningServer, change: dict[str, object], field: str) -> None:
    with tiny_server.client() as http:
        response = http.post("/v2/rerank", json={**BODY, **change})
    assert response.status_code == 422
    body = response.json()
    assert field in [e["field"] for e in body["errors"]]
    assert body["message"].startswith("invalid request: ") and field in body["message"]


def test_422_for_jina_documents_and_broken_json(tiny_server: RunningServer) -> None:
    with tiny_server.client() as http:
        no_text = http.post("/rerank", json={"query": QUERY, "documents": ["a", {"title": "b"}]})
        not_json = http.post("/rerank", content=b"{not json", headers={"content-type": "application/json"})
        missing = http.post("/v2/rerank", json={"query": QUERY, "documents": TEXTS})
    assert no_text.status_code == 422 and no_text.json()["errors"][0]["field"] == "documents.1"
    assert "'text'" in no_text.json()["errors"][0]["message"]
    assert not_json.status_code == 422 and "JSON" in not_json.json()["message"]
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "model"


# --- 429, 504: the queue and the clock ---------------------------------------------------------
async def test_429_with_retry_after_when_the_queue_is_full() -> None:
    reranker = GatedReranker()
    server = RunningServer(reranker, max_queue=2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            body = {"model": "gated", "query": "block me", "documents": TEXTS}
            held = [asyncio.create_task(http.post("/v2/rerank", json=body)) for _ in range(2)]
            await asyncio.to_thread(wait_until, lambda: server.service.gate.active == 2, what="2 queued")
            refused = await http.post("/v2/rerank", json={**body, "query": QUERY})
            client = cohere.AsyncClientV2(api_key="k", base_url=server.url, timeout=30)
            with pytest.raises(cohere.TooManyRequestsError):
                await client.rerank(
                    model="gated", query=QUERY, documents=TEXTS, request_options={"max_retries": 0}
                )
            reranker.gate.set()
            answers = await asyncio.gather(*held)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert "server busy" in refused.json()["message"]
        assert [a.status_code for a in answers] == [200, 200]  # the queued ones were not dropped
        assert server.metrics()['rerank_errors_total{reason="queue_full"}'] == 2
    finally:
        reranker.gate.set()
        server.stop()


def test_504_when_a_request_takes_too_long() -> None:
    reranker = GatedReranker(delay=1.0)
    server = RunningServer(reranker, request_timeout=0.2)
    try:
        with server.client() as http:
            slow = http.post("/v2/rerank", json={"model": "gated", "query": "slow one", "documents": TEXTS})
            wait_until(lambda: reranker.finished == 1, what="the model thread")
            fine = http.post("/v2/rerank", json={"model": "gated", "query": QUERY, "documents": TEXTS})
        assert slow.status_code == 504 and "0.2 s" in slow.json()["message"]
        assert fine.status_code == 200  # the server goes on after a timeout
    finally:
        server.stop()


def test_408_when_the_body_does_not_arrive_in_time() -> None:
    """A client that sends its headers and then stalls holds no queue slot past the timeout."""
    server = RunningServer(OverlapReranker(), request_timeout=0.5, max_queue=1)
    try:
        server.wait_ready()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as stalled:
            stalled.sendall(
                b"POST /v2/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            answer = stalled.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408") and "not received within 0.5 s" in answer
        body = {"model": "overlap", "query": QUERY, "documents": TEXTS}
        with server.client() as http:  # the one slot is free again
            assert http.post("/v2/rerank", json=body).status_code == 200
        assert server.metrics()['rerank_errors_total{reason="timeout"}'] == 1
    finally:
        server.stop()


def test_a_blank_key_is_refused_and_a_key_file_newline_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="api_key must not be blank"):
        ServeSettings(api_key="  ")
    assert ServeSettings(api_key="abc\n").api_key.get_secret_value() == "abc"  # type: ignore[union-attr]
    monkeypatch.setenv("RERANK_LAYER_API_KEY", "from-a-secret-file\n")
    assert ServeSettings().api_key.get_secret_value() == "from-a-secret-file"  # type: ignore[union-attr]
    monkeypatch.setenv("RERANK_LAYER_API_KEY", "\n")
    assert ServeSettings().api_key is None


# --- 502, 503 or first-stage order: provider failures --------------------------------------------
def test_502_with_the_reason_when_on_error_is_raise() -> None:
    server = RunningServer(FailingReranker(on_error="raise"))
    try:
        with server.client() as http:
            response = http.post("/v2/rerank", json={"model": "failing", "query": QUERY, "documents": TEXTS})
        assert response.status_code == 502
        assert "provider is down" in response.json()["message"]
    finally:
        server.stop()


def test_503_with_retry_after_when_the_provider_is_unavailable() -> None:
    server = RunningServer(UnavailableReranker(on_error="raise"))
    try:
        client = cohere.ClientV2(api_key="k", base_url=server.url, timeout=30)
        with pytest.raises(cohere.ServiceUnavailableError) as caught:
            client.rerank(
                model="unavailable", query=QUERY, documents=TEXTS, request_options={"max_retries": 0}
            )
        assert caught.value.headers["retry-after"] == "7"
        assert "upstream overloaded" in caught.value.body["message"]
    finally:
        server.stop()


def test_fail_open_keeps_the_first_stage_order() -> None:
    server = RunningServer(FailingReranker())  # on_error="fail_open", the default
    try:
        client = cohere.ClientV2(api_key="k", base_url=server.url, timeout=30)
        response = client.rerank(model="failing", query=QUERY, documents=TEXTS, top_n=3)
        assert [r.index for r in response.results] == [0, 1, 2]
        assert all(r.relevance_score is None for r in response.results)
        assert "provider is down" in response.meta.warnings[0]
        assert server.metrics()['rerank_errors_total{reason="fail_open"}'] == 1
    finally:
        server.stop()


def test_fallbacks_of_the_spec_answer_when_the_provider_fails() -> None:
    server = RunningServer(FailingReranker(fallbacks=[OverlapReranker()]))
    try:
        with server.client() as http:
            body = http.post("/rerank", json={"query": "cat pet", "documents": TEXTS}).json()
        assert body["results"][0]["index"] == 1 and body["results"][0]["relevance_score"] == 1.0
        assert "warnings" not in body["meta"]
    finally:
        server.stop()


def test_one_bad_request_does_not_fail_its_batch() -> None:
    reranker = GatedReranker()
    server = RunningServer(reranker, max_wait_ms=2000)
    try:

        async def three() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

                def send(query: str) -> asyncio.Task[httpx.Response]:
                    return asyncio.create_task(
                        http.post("/rerank", json={"query": query, "documents": TEXTS})
                    )

                first = send("block the model")
                await asyncio.to_thread(wait_until, lambda: len(reranker.groups) == 1, what="the first group")
                others = [send("bad one"), send("cat pet")]  # queued together behind the first
                await asyncio.to_thread(
                    wait_until, lambda: server.service.queue.outstanding == 3, what="queued"
                )
                reranker.gate.set()
                return list(await asyncio.gather(first, *others))

        first, bad, good = (r.json() for r in asyncio.run(three()))
        assert sorted(reranker.groups[1]) == ["bad one", "cat pet"]  # scored together, failed,
        assert sorted(reranker.groups[2:]) == [["bad one"], ["cat pet"]]  # then each alone
        assert good["results"][0]["index"] == 1 and "warnings" not in good["meta"]
        assert "bad request" in bad["meta"]["warnings"][0]  # fail_open: first-stage order
        assert [r["index"] for r in bad["results"]] == list(range(len(TEXTS)))
        assert len(first["results"]) == len(TEXTS)
    finally:
        reranker.gate.set()
        server.stop()
