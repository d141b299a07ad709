"""The loopback-only network guard, for the test fixture and for subprocesses the tests start."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tests.support.fake_api import install_loopback_guard, is_loopback_host

T = TypeVar("T")


@contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuse every connection and name lookup beyond loopback; yield the list of attempts.

    ``install_loopback_guard`` makes connects raise; a reranker on fail-open would turn that
    into a quiet fallback, so refused attempts (and name lookups of non-loopback hosts) are
    recorded even when the caller swallows the error.
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
