"""Helpers for the hosted-provider tests: the fake API server, a no-network guard, reranker builders."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from core.providers.hosted.base import ApiReranker
from core.registry import create_reranker
from tests.support.fake_api import (
    FakeApiServer,
    install_loopback_guard,
    is_loopback_host,
    start_fake_api,
    word_overlap,
)

T = TypeVar("T")

#: Our provider name -> the fake server's name for its wire format.
WIRE = {"cohere": "cohere", "zero_entropy": "zeroentropy"}
HOSTED = tuple(WIRE)

QUERY = "cat on mat"
DOCS = ["the cat sat on the mat", "dogs bark loudly", "a cat and a dog", "nothing relevant here"]


def expected_order(docs: list[str] = DOCS, query: str = QUERY) -> list[int]:
    """Input positions best first, by the fake server's scoring rule (stable on ties)."""
    return sorted(range(len(docs)), key=lambda i: -word_overlap(query, docs[i]))


def serve() -> Iterator[FakeApiServer]:
    """A fake API server for a module (use with ``yield from``)."""
    server = start_fake_api()
    yield server
    server.close()


def fresh(server: FakeApiServer) -> Iterator[FakeApiServer]:
    """The server with scripts, records, latency and scorer reset around one test."""
    server.reset()
    yield server
    server.reset()


def guard_network() -> Iterator[list[str]]:
    """Block every non-loopback connection, and fail the test if one was even attempted.

    ``install_loopback_guard`` makes connects raise; a reranker on fail-open would turn that
    into a quiet fallback, so name lookups of non-loopback hosts are refused and recorded
    too, and the list of attempts must be empty when the test ends.
    """
    attempts: list[str] = []
    original_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not is_loopback_host(host):
            attempts.append(f"{host}:{port}")
            raise OSError(f"name lookup of {host} blocked in tests")
        return original_getaddrinfo(host, port, *args, **kwargs)

    undo = install_loopback_guard()
    guarded_create, guarded_connect = socket.create_connection, socket.socket.connect
    guarded_connect_ex = socket.socket.connect_ex

    def recorded(call: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: Any, **kwargs: Any) -> T:
            try:
                return call(*args, **kwargs)
            except RuntimeError as exc:  # the guard's refusal: remember it even if the caller swallows it
                attempts.append(str(exc))
                raise

        return wrapper

    socket.create_connection = recorded(guarded_create)
    socket.socket.connect = recorded(guarded_connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = recorded(guarded_connect_ex)  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    try:
        yield attempts
    finally:
        socket.getaddrinfo = original_getaddrinfo
        socket.create_connection = guarded_create
        socket.socket.connect = guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
        undo()
    assert not attempts, f"the test tried to reach the network: {attempts}"


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


#: Fast, test-sized resilience settings.
FAST = {"timeout": 2.0, "deadline": 5.0, "max_retries": 3, "max_retry_wait": 0.01}


def hosted(provider: str, server: FakeApiServer | str, **config: Any) -> ApiReranker:
    """A ``provider`` reranker aimed at ``server`` (or a base URL), key "k", fast retries, client ready."""
    base_url = server if isinstance(server, str) else server.url
    reranker = create_reranker(
        {"provider": provider, "config": {"api_key": "k", "base_url": base_url, **FAST, **config}}
    )
    assert isinstance(reranker, ApiReranker)
    reranker.warmup()  # the first SDK client costs ~1 s of imports: keep it out of timed calls
    return reranker
