"""Pure-ASGI middlewares, outermost first: metrics, bearer key (401), admission (429), body size (413).

Each refuses a request before the next one (or the app) does any work for it: an unauthorised
client never gets its body read, and a full server reads no body at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Collection
from dataclasses import dataclass

from pydantic import SecretStr

from core.serve.asgi import ASGIApp, Message, Receive, Scope, Send
from core.serve.errors import HttpError, retry_after
from core.serve.metrics import ServeMetrics

#: Key of ``request.state`` holding the request's arrival time (``time.perf_counter``).
ARRIVAL = "arrival"


@dataclass
class Gate:
    """Rerank requests inside the server now, and how many may be."""

    capacity: int
    active: int = 0


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


async def _refuse(error: HttpError, send: Send, metrics: ServeMetrics) -> None:
    metrics.errors.labels(error.reason).inc()
    await error.send(send)


class Instrumentation:
    """Counts every HTTP request by route and status and times it (unknown paths count as ``other``)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, routes: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = 500
        started = time.perf_counter()
        scope.setdefault("state", {})[ARRIVAL] = started  # ``request.state.arrival`` for Server-Timing

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


class BearerAuth:
    """401 unless the request carries ``Authorization: Bearer <key>`` (constant-time comparison).

    With no key configured every request passes; ``open_paths`` (health checks) always pass.
    """

    def __init__(
        self, app: ASGIApp, key: SecretStr | None, metrics: ServeMetrics, open_paths: Collection[str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.open_paths = frozenset(open_paths)
        self._digest = _digest(key.get_secret_value().encode()) if key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._digest is not None and scope["path"] not in self.open_paths:
            scheme, _, token = (_header(scope, b"authorization") or b"").partition(b" ")
            valid = hmac.compare_digest(_digest(token.strip()), self._digest)  # equal lengths: no leak
            if not (valid and scheme.lower() == b"bearer"):
                message = "missing or invalid API key: send 'Authorization: Bearer <key>'"
                error = HttpError(401, message, reason="unauthorized", headers={"WWW-Authenticate": "Bearer"})
                await _refuse(error, send, self.metrics)
                return
        await self.app(scope, receive, send)


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class Admission:
    """429 with ``Retry-After`` when ``gate.capacity`` rerank requests are already inside."""

    def __init__(self, app: ASGIApp, gate: Gate, metrics: ServeMetrics, paths: Collection[str]) -> None:
        self.app = app
        self.gate = gate
        self.metrics = metrics
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        if self.gate.active >= self.gate.capacity:
            message = f"server busy: {self.gate.capacity} requests already queued; retry later"
            await _refuse(
                HttpError(429, message, reason="queue_full", headers=retry_after(1)), send, self.metrics
            )
            return
        self.gate.active += 1
        self.metrics.queue_depth.set(self.gate.active)
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.active -= 1
            self.metrics.queue_depth.set(self.gate.active)


class BodyLimit:
    """413 for a body over ``limit`` bytes (by its Content-Length, or counted as it arrives); 408 for
    one that has not fully arrived ``timeout`` seconds after its headers."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float, metrics: ServeMetrics) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        too_large = HttpError(
            413, f"request body over the server's limit of {self.limit} bytes", reason="too_large"
        )
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(too_large, send, self.metrics)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout)
        except asyncio.TimeoutError:
            message = f"request body not received within {self.timeout:g} s"
            await _refuse(HttpError(408, message, reason="timeout"), send, self.metrics)
            return
        if body is None:
            return  # the client left: nothing to answer
        if len(body) > self.limit:
            await _refuse(too_large, send, self.metrics)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body (reading stops one byte past the limit), or None if the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            chunks.append(chunk)
            if size > self.limit or not message.get("more_body", False):
                return b"".join(chunks)
