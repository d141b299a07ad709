"""The fake provider API works with the real cohere, zeroentropy and openai SDKs."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import cohere
import httpx
import openai
import pytest
import zeroentropy

from tests.support.fake_api import (
    FakeApiServer,
    Fault,
    install_loopback_guard,
    is_loopback_host,
    start_fake_api,
    word_overlap,
)

DOCS = ["the cat sat on the mat", "dogs bark loudly", "a cat and a dog", "nothing relevant here"]
QUERY = "cat on mat"
MSGS: Any = [{"role": "user", "content": "x"}]


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApiServer]:
    """One server for the module."""
    server = start_fake_api()
    yield server
    server.close()


_OPEN: list[Callable[[], None]] = []  # close() of every sync client a test made


@pytest.fixture
def server(api: FakeApiServer) -> Iterator[FakeApiServer]:
    """The module server, reset around each test; SDK clients made by the helpers are closed after it."""
    api.reset()
    yield api
    while _OPEN:
        _OPEN.pop()()
    api.reset()


def _opts(kw: dict[str, Any]) -> dict[str, Any]:
    return {"api_key": "k", "max_retries": 0, "timeout": 5, **kw}


def co(server: FakeApiServer, **kw: Any) -> cohere.ClientV2:
    """A sync Cohere v2 client on the fake server (no retries, 5 s timeout unless given)."""
    client = cohere.ClientV2(**_opts({"base_url": server.url, **kw}))
    _OPEN.append(client._client_wrapper.httpx_client.httpx_client.close)
    return client


def ze(server: FakeApiServer, **kw: Any) -> zeroentropy.ZeroEntropy:
    """A sync ZeroEntropy client on the fake server."""
    client = zeroentropy.ZeroEntropy(**_opts({"base_url": server.url, **kw}))
    _OPEN.append(client.close)
    return client


def oa(server: FakeApiServer, **kw: Any) -> openai.OpenAI:
    """A sync OpenAI client on the fake server's ``/v1``."""
    client = openai.OpenAI(**_opts({"base_url": server.url + "/v1", **kw}))
    _OPEN.append(client.close)
    return client


def expected_order(docs: list[str] = DOCS, query: str = QUERY) -> list[int]:
    return sorted(range(len(docs)), key=lambda i: -word_overlap(query, docs[i]))


# ---- happy paths ----------------------------------------------------------------------------------
def test_word_overlap_rule() -> None:
    assert word_overlap("Cat on MAT", "the cat sat on the mat") == 1.0
    assert word_overlap("cat on mat", "a cat and a dog") == pytest.approx(1 / 3)
    assert word_overlap("", "anything") == 0.0


def test_cohere_rerank(server: FakeApiServer) -> None:
    res = co(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2)
    assert [r.index for r in res.results] == expected_order()[:2]
    assert res.results[0].relevance_score == 1.0
    assert res.meta is not None and res.meta.billed_units is not None
    assert res.meta.billed_units.search_units == 1
    (rec,) = server.requests_for("cohere")
    assert (rec.method, rec.path) == ("POST", "/v2/rerank")
    assert rec.body == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 2}
    assert rec.headers["authorization"] == "Bearer k" == rec.headers["AUTHORIZATION"]
    assert "Authorization" in rec.headers


def test_zeroentropy_rerank(server: FakeApiServer) -> None:
    res = ze(server).models.rerank(model="zerank-2", query=QUERY, documents=DOCS, latency="fast")
    assert [r.index for r in res.results] == expected_order()
    scores = [r.relevance_score for r in res.results]
    assert scores == sorted(scores, reverse=True)
    assert res.actual_latency_mode == "fast" and res.total_bytes > 0
    (rec,) = server.requests_for("zeroentropy")
    assert rec.path == "/models/rerank"
    assert rec.body == {"documents": DOCS, "model": "zerank-2", "query": QUERY, "latency": "fast"}
    assert rec.headers.get("Authorization") == "Bearer k"


def test_zeroentropy_v1_path_and_top_n(server: FakeApiServer) -> None:
    client = ze(server, base_url=server.url + "/v1")
    res = client.models.rerank(model="zerank-2", query=QUERY, documents=DOCS, top_n=1)
    assert [r.index for r in res.results] == [0]
    assert server.requests_for("zeroentropy")[0].path == "/v1/models/rerank"


def test_custom_score_fn(server: FakeApiServer) -> None:
    server.score_fn = lambda q, d: len(d) / 100
    res = co(server).rerank(model="m", query="q", documents=["aa", "aaaa", "a"])
    assert [r.index for r in res.results] == [1, 0, 2]
    assert res.results[0].relevance_score == pytest.approx(0.04)


def test_openai_default_handler(server: FakeApiServer) -> None:
    msgs: Any = [{"role": "user", "content": "rate this"}]
    res = oa(server).chat.completions.create(model="gpt-x", messages=msgs, temperature=0)
    assert res.choices[0].message.content == "0.5"
    assert res.model == "gpt-x" and res.usage is not None and res.usage.prompt_tokens == 2
    (rec,) = server.requests_for("openai")
    assert rec.path == "/v1/chat/completions"
    assert rec.body["messages"] == msgs and rec.body["temperature"] == 0
    assert rec.headers["Authorization"] == "Bearer k"


def test_openai_custom_handler_with_logprobs(server: FakeApiServer) -> None:
    seen: list[dict[str, Any]] = []

    def handler(req: dict[str, Any]) -> dict[str, Any]:
        seen.append(req)
        top = [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]
        return {
            "content": "Yes",
            "logprobs": [{"token": "Yes", "logprob": -0.1, "top_logprobs": top}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
        }

    server.chat_handler = handler
    res = oa(server).chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "relevant?"}],
        logprobs=True,
        top_logprobs=2,
        max_tokens=1,
    )
    choice = res.choices[0]
    assert choice.message.content == "Yes" and choice.finish_reason == "stop"
    assert choice.logprobs is not None and choice.logprobs.content is not None
    tok = choice.logprobs.content[0]
    assert tok.token == "Yes" and tok.logprob == -0.1
    assert [(t.token, t.logprob) for t in tok.top_logprobs] == [("Yes", -0.1), ("No", -2.4)]
    assert res.usage is not None and res.usage.total_tokens == 8
    assert seen[0]["logprobs"] is True and seen[0]["top_logprobs"] == 2


def test_openai_without_v1_prefix(server: FakeApiServer) -> None:
    server.chat_handler = lambda req: "0.9"
    client = oa(server, base_url=server.url)
    res = client.chat.completions.create(model="m", messages=MSGS)
    assert res.choices[0].message.content == "0.9"
    assert server.requests_for("openai")[0].path == "/chat/completions"


# ---- faults --------------------------------------------------------------------------------------
def test_429_retry_after_ms_is_retried_fast(server: FakeApiServer) -> None:
    for provider in ("cohere", "zeroentropy", "openai"):
        server.script(provider, Fault(status=429, headers={"retry-after-ms": "1"}), Fault.rate_limited())
    start = time.monotonic()
    assert co(server, max_retries=2).rerank(model="m", query=QUERY, documents=DOCS).results
    assert ze(server, max_retries=2).models.rerank(model="m", query=QUERY, documents=DOCS).results
    res = oa(server, max_retries=2).chat.completions.create(model="m", messages=MSGS)
    assert res.choices[0].message.content == "0.5"
    assert time.monotonic() - start < 1.0
    for provider in ("cohere", "zeroentropy", "openai"):
        assert len(server.requests_for(provider)) == 3 and server.pending(provider) == 0


def test_retry_after_seconds_header_is_sent(server: FakeApiServer) -> None:
    server.script("cohere", Fault(status=429, headers={"Retry-After": "7"}))
    with pytest.raises(cohere.TooManyRequestsError) as exc:
        co(server).rerank(model="m", query="q", documents=["d"])
    assert exc.value.status_code == 429
    assert exc.value.headers is not None and exc.value.headers.get("retry-after") == "7"


def test_500_without_retries_raises_sdk_errors(server: FakeApiServer) -> None:
    for provider in ("cohere", "zeroentropy", "openai"):
        server.script(provider, Fault(status=500))
    with pytest.raises(cohere.InternalServerError):
        co(server).rerank(model="m", query="q", documents=["d"])
    with pytest.raises(zeroentropy.InternalServerError):
        ze(server).models.rerank(model="m", query="q", documents=["d"])
    with pytest.raises(openai.InternalServerError) as exc:
        oa(server).chat.completions.create(model="m", messages=MSGS)
    assert "scripted fault" in str(exc.value)
    assert all(len(server.requests_for(p)) == 1 for p in ("cohere", "zeroentropy", "openai"))


@pytest.mark.parametrize(
    ("status", "co_err", "ze_err", "oa_err"),
    [
        (400, cohere.BadRequestError, zeroentropy.BadRequestError, openai.BadRequestError),
        (401, cohere.UnauthorizedError, zeroentropy.AuthenticationError, openai.AuthenticationError),
        (503, cohere.ServiceUnavailableError, zeroentropy.InternalServerError, openai.InternalServerError),
    ],
)
def test_error_statuses(
    server: FakeApiServer,
    status: int,
    co_err: type[Exception],
    ze_err: type[Exception],
    oa_err: type[Exception],
) -> None:
    for provider in ("cohere", "zeroentropy", "openai"):
        server.script(provider, Fault(status=status))
    with pytest.raises(co_err):
        co(server).rerank(model="m", query="q", documents=["d"])
    with pytest.raises(ze_err):
        ze(server).models.rerank(model="m", query="q", documents=["d"])
    with pytest.raises(oa_err):
        oa(server).chat.completions.create(model="m", messages=MSGS)


@pytest.mark.parametrize("raw", [b"{not json", b""])
def test_malformed_and_empty_bodies(server: FakeApiServer, raw: bytes) -> None:
    """Cohere wraps bad JSON in ApiError; zeroentropy and openai let json.JSONDecodeError (ValueError) out."""
    for provider in ("cohere", "zeroentropy", "openai"):
        server.script(provider, Fault(raw=raw))
    with pytest.raises(cohere.core.api_error.ApiError) as exc:
        co(server).rerank(model="m", query="q", documents=["d"])
    assert exc.value.status_code == 200
    with pytest.raises(ValueError):
        ze(server).models.rerank(model="m", query="q", documents=["d"])
    with pytest.raises(ValueError):
        oa(server).chat.completions.create(model="m", messages=MSGS)


def test_mutations(server: FakeApiServer) -> None:
    def drop_scores(resp: dict[str, Any]) -> None:
        for r in resp["results"]:
            r["relevance_score"] = None

    server.script(
        "cohere",
        Fault(mutate=drop_scores),
        Fault(mutate=lambda r: {**r, "results": [{"index": 0, "relevance_score": 0.1}] * 2}),
        Fault(mutate=lambda r: {**r, "results": [{"index": 99, "relevance_score": 0.1}]}),
    )
    client = co(server)
    assert [r.relevance_score for r in client.rerank(model="m", query="q", documents=["d", "e"]).results] == [
        None,
        None,
    ]
    assert [r.index for r in client.rerank(model="m", query="q", documents=["d", "e"]).results] == [0, 0]
    assert [r.index for r in client.rerank(model="m", query="q", documents=["d", "e"]).results] == [99]
    server.script("zeroentropy", Fault(mutate=lambda r: {**r, "results": r["results"][:1]}))
    assert len(ze(server).models.rerank(model="m", query=QUERY, documents=DOCS).results) == 1


def test_custom_body_and_close_connection(server: FakeApiServer) -> None:
    server.script("cohere", Fault(body={"id": "x", "results": []}), Fault(close=True))
    assert co(server).rerank(model="m", query="q", documents=["d"]).results == []
    with pytest.raises(httpx.RemoteProtocolError):
        co(server).rerank(model="m", query="q", documents=["d"])
    server.script("openai", Fault(close=True))
    with pytest.raises(openai.APIConnectionError):
        oa(server).chat.completions.create(model="m", messages=MSGS)


def test_delay_beyond_timeout(server: FakeApiServer) -> None:
    for provider in ("cohere", "zeroentropy", "openai"):
        server.script(provider, Fault(delay=1.0))
    with pytest.raises(httpx.TimeoutException):
        co(server, timeout=0.2).rerank(model="m", query="q", documents=["d"])
    with pytest.raises(zeroentropy.APITimeoutError):
        ze(server, timeout=0.2).models.rerank(model="m", query="q", documents=["d"])
    with pytest.raises(openai.APITimeoutError):
        oa(server, timeout=0.2).chat.completions.create(model="m", messages=MSGS)
    # The server keeps answering after clients gave up.
    assert co(server).rerank(model="m", query="q", documents=["d"]).results


def test_latency_does_not_serialize_requests(server: FakeApiServer) -> None:
    server.latency["cohere"] = 0.3
    client = co(server)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.rerank(model="m", query="q", documents=["d"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert time.monotonic() - start < 1.2  # six 0.3 s calls in parallel, not 1.8 s in series
    assert len(server.requests_for("cohere")) == 6


def test_bad_request_and_unknown_route(server: FakeApiServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    conn.request(
        "POST", "/v2/rerank", body=json.dumps({"query": 1}), headers={"Content-Type": "application/json"}
    )
    resp = conn.getresponse()
    assert resp.status == 400 and "query" in json.loads(resp.read())["message"]
    conn.request("GET", "/nope")
    resp = conn.getresponse()
    assert resp.status == 404 and resp.read()
    conn.close()
    assert [r.provider for r in server.requests] == ["cohere", "unknown"]


def test_script_rejects_unknown_provider(server: FakeApiServer) -> None:
    with pytest.raises(ValueError):
        server.script("nope", Fault())


def test_context_manager_and_double_close() -> None:
    with start_fake_api() as other:
        assert other.url != "" and co(other).rerank(model="m", query="q", documents=["d"]).results
    other.close()
    FakeApiServer().close()  # never started: must not hang


def test_reset_clears_everything(server: FakeApiServer) -> None:
    server.script("cohere", Fault(status=500))
    server.latency["openai"] = 1.0
    server.chat_handler = lambda req: "1"
    server.score_fn = lambda q, d: 0.0
    server.reset()
    assert server.pending("cohere") == 0 and not server.latency and not server.requests
    res = oa(server).chat.completions.create(model="m", messages=MSGS)
    assert res.choices[0].message.content == "0.5"


# ---- async clients -------------------------------------------------------------------------------
def test_async_clients(server: FakeApiServer) -> None:
    server.latency["cohere"] = 0.2
    server.latency["zeroentropy"] = 0.2
    server.script("openai", Fault.rate_limited())

    async def main() -> tuple[Any, Any, Any]:
        async with (
            cohere.AsyncClientV2(api_key="k", base_url=server.url, timeout=5, max_retries=0) as c,
            zeroentropy.AsyncZeroEntropy(api_key="k", base_url=server.url, timeout=5, max_retries=0) as z,
            openai.AsyncOpenAI(api_key="k", base_url=server.url + "/v1", timeout=5, max_retries=1) as o,
        ):
            return await asyncio.gather(
                c.rerank(model="m", query=QUERY, documents=DOCS, top_n=3),
                z.models.rerank(model="m", query=QUERY, documents=DOCS),
                o.chat.completions.create(model="m", messages=MSGS),
            )

    start = time.monotonic()
    co_res, ze_res, oa_res = asyncio.run(main())
    assert time.monotonic() - start < 1.5
    assert [r.index for r in co_res.results] == expected_order()[:3]
    assert [r.index for r in ze_res.results] == expected_order()
    assert oa_res.choices[0].message.content == "0.5"
    assert len(server.requests_for("openai")) == 2


def test_async_timeout(server: FakeApiServer) -> None:
    server.script("zeroentropy", Fault(delay=1.0))

    async def main() -> None:
        async with zeroentropy.AsyncZeroEntropy(
            api_key="k", base_url=server.url, timeout=0.2, max_retries=0
        ) as z:
            await z.models.rerank(model="m", query="q", documents=["d"])

    with pytest.raises(zeroentropy.APITimeoutError):
        asyncio.run(main())


# ---- loopback guard ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        (b"127.0.0.1", True),
        ("10.255.255.1", False),
        ("0.0.0.0", False),
        ("example.com", False),
        ("2001:db8::1", False),
    ],
)
def test_is_loopback_host(host: str | bytes, ok: bool) -> None:
    assert is_loopback_host(host) is ok


def test_loopback_guard(server: FakeApiServer) -> None:
    originals = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection)
    undo = install_loopback_guard()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(RuntimeError) as exc:
            s.connect(("10.255.255.1", 9))
        assert str(exc.value) == "network access to 10.255.255.1:9 blocked in tests"
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s,
            pytest.raises(RuntimeError, match="blocked"),
        ):
            s.connect_ex(("10.255.255.1", 9))
        with pytest.raises(RuntimeError, match="network access to example.com:443 blocked in tests"):
            socket.create_connection(("example.com", 443), timeout=0.1)
        # Through the SDKs: cohere and openai let the RuntimeError out, zeroentropy wraps it.
        far = "http://10.255.255.1:9"
        with pytest.raises(RuntimeError, match="blocked"):
            co(server, base_url=far).rerank(model="m", query="q", documents=["d"])
        with pytest.raises(RuntimeError, match="blocked"):
            oa(server, base_url=far).chat.completions.create(model="m", messages=MSGS)
        with pytest.raises(zeroentropy.APIConnectionError) as api_exc:
            ze(server, base_url=far).models.rerank(model="m", query="q", documents=["d"])
        assert "blocked in tests" in str(api_exc.value.__cause__)
        # Loopback still works, by IP and by name, and through an SDK.
        port = server.server_address[1]
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        socket.create_connection(("localhost", port), timeout=1).close()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            assert s.connect_ex(("127.0.0.1", port)) == 0
        assert co(server).rerank(model="m", query="q", documents=["d"]).results
    finally:
        undo()
    assert (socket.socket.connect, socket.socket.connect_ex, socket.create_connection) == originals
