"""HTTP clients for the SDKs whose every network operation is bounded by the attempt's clock.

Each SDK takes a custom httpx client (cohere ``httpx_client=``, openai / zeroentropy ``http_client=``).
The one built here keeps the library's own transport, with its network backend wrapped: connect, TLS,
each write and each read get ``min(timeout, time left on the attempt)``, and fail with the library's
own timeout error once the attempt is over. A slow body (bytes dripped under the read timeout) then
ends the sync attempt on time, as ``asyncio.wait_for`` ends the async one.

The flavour of httpx is the SDK's own (``httpx``, or ``httpx2`` for openai 3): read from its
``DefaultHttpxClient`` when it has one.
"""

from __future__ import annotations

import functools
import importlib
import logging
import ssl
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from core.providers.hosted.clock import capped

logger = logging.getLogger("rerank_layer")


class _Errors:
    """The timeout errors of one httpcore flavour (``httpcore`` or ``httpcore2``)."""

    def __init__(self, core: ModuleType) -> None:
        self.connect: type[Exception] = core.ConnectTimeout
        self.read: type[Exception] = core.ReadTimeout
        self.write: type[Exception] = core.WriteTimeout


class _ClockedStream:
    """A sync network stream whose operations end when the attempt does."""

    def __init__(self, inner: Any, errors: _Errors) -> None:
        self._inner = inner
        self._errors = errors

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._inner.read(max_bytes, capped(timeout, self._errors.read))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, capped(timeout, self._errors.write))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> _ClockedStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, capped(timeout, self._errors.connect))
        return _ClockedStream(inner, self._errors)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncClockedStream:
    """Async twin of ``_ClockedStream``."""

    def __init__(self, inner: Any, errors: _Errors) -> None:
        self._inner = inner
        self._errors = errors

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = await self._inner.read(max_bytes, capped(timeout, self._errors.read))
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, capped(timeout, self._errors.write))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> _AsyncClockedStream:
        timeout = capped(timeout, self._errors.connect)
        inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _AsyncClockedStream(inner, self._errors)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _ClockedBackend:
    """A sync network backend whose connections are clocked streams."""

    def __init__(self, inner: Any, errors: _Errors) -> None:
        self._inner = inner
        self._errors = errors

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _ClockedStream:
        timeout = capped(timeout, self._errors.connect)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _ClockedStream(stream, self._errors)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _ClockedStream:
        timeout = capped(timeout, self._errors.connect)
        return _ClockedStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._errors)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncClockedBackend:
    """Async twin of ``_ClockedBackend``."""

    def __init__(self, inner: Any, errors: _Errors) -> None:
        self._inner = inner
        self._errors = errors

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _AsyncClockedStream:
        timeout = capped(timeout, self._errors.connect)
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncClockedStream(stream, self._errors)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _AsyncClockedStream:
        timeout = capped(timeout, self._errors.connect)
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _AsyncClockedStream(stream, self._errors)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _clock(transport: Any, asynchronous: bool) -> bool:
    """Wrap the network backend of ``transport``'s connection pool; False when it has none to wrap.

    httpx builds its httpcore pool without a way to pass a backend, so the pool's
    ``_network_backend`` is replaced (the private attributes this module relies on: the transport's
    ``_pool``, its ``_network_backend``, and the client's ``_mounts`` for proxies from the environment).
    """
    pool: Any = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    core = sys.modules.get(type(pool).__module__.split(".")[0])
    if backend is None or core is None or not hasattr(core, "ReadTimeout"):
        return False
    wrapper = _AsyncClockedBackend if asynchronous else _ClockedBackend
    if not isinstance(backend, wrapper):
        pool._network_backend = wrapper(backend, _Errors(core))
    return True


def http_library(sdk: ModuleType) -> ModuleType:
    """The httpx flavour ``sdk`` speaks: that of its ``DefaultHttpxClient``, else ``httpx``."""
    default = getattr(sdk, "DefaultHttpxClient", None)
    for cls in getattr(default, "__mro__", ()):
        top = cls.__module__.split(".")[0]
        if top.startswith("httpx") and top in sys.modules:
            return sys.modules[top]
    return importlib.import_module("httpx")


@functools.cache
def _ssl_context(library: ModuleType) -> ssl.SSLContext:
    """One default TLS context per httpx flavour (loading the CA bundle costs tens of milliseconds)."""
    context: ssl.SSLContext = library.create_ssl_context()
    return context


def clocked_http_client(sdk: ModuleType, asynchronous: bool, timeout: float, connections: int) -> Any:
    """A new httpx client (async if asked) for ``sdk``, its network operations bounded by the attempt clock.

    The SDK's ``DefaultHttpxClient`` / ``DefaultAsyncHttpxClient`` is used when it has one (its
    defaults), else the library's client with redirects followed; up to ``connections`` pooled
    connections (at least the library's default of 100).
    """
    library = http_library(sdk)
    limits = library.Limits(
        max_connections=max(100, connections), max_keepalive_connections=max(20, connections)
    )
    transport_class = library.AsyncHTTPTransport if asynchronous else library.HTTPTransport
    transport = transport_class(verify=_ssl_context(library), limits=limits)
    name = "DefaultAsyncHttpxClient" if asynchronous else "DefaultHttpxClient"
    client_class = getattr(sdk, name, None) or (library.AsyncClient if asynchronous else library.Client)
    client = client_class(transport=transport, timeout=timeout, follow_redirects=True)
    mounted = [t for t in getattr(client, "_mounts", {}).values() if t is not None]  # env proxies
    if not all([_clock(t, asynchronous) for t in (transport, *mounted)]):
        logger.warning(
            "%s: this %s version has no network backend to clock; a slow answer may outlast the deadline",
            sdk.__name__,
            library.__name__,
        )
    return client
