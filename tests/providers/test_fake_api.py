"""What the suite relies on in the fake API server and the loopback guard.

The wire formats and scripted faults are exercised through the real SDKs by every provider test;
here: the scoring rule behind ``expected_order``, concurrency, reset, routing, close, and the guard.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import cohere
import openai
import pytest
import zeroentropy

from tests.support.fake_api import (
    DOCS,
    QUERY,
    FakeApiServer,
    Fault,
    expected_order,
    install_loopback_guard,
    is_loopback_host,
    start_fake_api,
    word_overlap,
)

MSGS: Any = [{"role": "user", "content": "x"}]
_OPEN: list[Callable[[], None]] = []  # close() of every sync client a test made


@pytest.fixture
def server(server: FakeApiServer) -> Iterator[FakeApiServer]:
    """The reset fake server; SDK clients made by the helpers are closed after the test."""
    yield server
    while _OPEN:
        _OPEN.pop()()


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


# ---- the rule behind expected_order ---------------------------------------------------------------
def test_word_overlap_rule_and_the_ranking_it_gives(server: FakeApiServer) -> None:
    assert word_overlap("Cat on MAT", "the cat sat on the mat") == 1.0
    assert word_overlap("cat on mat", "a cat and a dog") == pytest.approx(1 / 3)
    assert word_overlap("", "anything") == 0.0
    res = co(server).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert [r.index for r in res.results] == expected_order()
    assert [r.relevance_score for r in res.results] == [
        word_overlap(QUERY, DOCS[i]) for i in expected_order()
    ]


# ---- behaviour the fixtures and concurrency tests rely on ------------------------------------------
def _call_in_threads(call: Callable[[], Any], count: int) -> list[BaseException]:
    """Run ``call`` in ``count`` threads at once; the errors they raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_requests_are_answered_in_parallel_and_counted_in_flight(server: FakeApiServer) -> None:
    server.hold_until(6)  # a server answering one request at a time never gets there: 10 s, then 1
    client = co(server, timeout=30)
    errors = _call_in_threads(lambda: client.rerank(model="m", query="q", documents=["d"]), 6)
    assert not errors
    assert server.most_in_flight == 6
    assert len(server.requests_for("cohere")) == 6


def test_a_hold_never_reached_gives_up_and_lets_requests_through(server: FakeApiServer) -> None:
    server.hold_until(2, timeout=0.2)
    client = co(server, timeout=30)
    assert client.rerank(model="m", query="q", documents=["d"]).results  # held 0.2 s, then answered
    assert server.most_in_flight == 1
    server.hold_until(2)  # the next two requests meet and both go on
    assert _call_in_threads(lambda: client.rerank(model="m", query="q", documents=["d"]), 2) == []
    assert server.most_in_flight == 2 and len(server.requests_for("cohere")) == 3


def test_reset_clears_everything(server: FakeApiServer) -> None:
    server.script("cohere", Fault(status=500))
    server.latency["openai"] = 1.0
    server.chat_handler = lambda req: "1"
    server.score_fn = lambda q, d: 0.0
    assert ze(server).models.rerank(model="m", query=QUERY, documents=DOCS).results[0].relevance_score == 0.0
    server.hold_until(5, timeout=60)  # were it kept, the 5 s clients below would time out
    assert server.most_in_flight == 1
    server.reset()
    assert server.pending("cohere") == 0 and not server.latency and not server.requests
    assert server.most_in_flight == server.in_flight == 0
    res = oa(server).chat.completions.create(model="m", messages=MSGS)
    assert res.choices[0].message.content == "0.5"
    assert ze(server).models.rerank(model="m", query=QUERY, documents=DOCS).results[0].relevance_score == 1.0


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
