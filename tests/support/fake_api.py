"""Local fake of the Cohere v2, ZeroEntropy and OpenAI-compatible chat HTTP APIs for tests.

Point the real SDKs at ``server.url`` (OpenAI: ``server.url + "/v1"``), script faults per provider with
``server.script("cohere", Fault(status=429, headers={"retry-after-ms": "1"}))`` and inspect
``server.requests``. ``server.most_in_flight`` is the most requests it answered at once, and
``server.hold_until(n)`` makes it hold requests until ``n`` are in flight together: concurrency is proven by
the overlap the server saw, never by a clock. ``install_loopback_guard()`` blocks any non-loopback connection.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROVIDERS = ("cohere", "zeroentropy", "openai")
ROUTES: dict[str, str] = {
    "/v2/rerank": "cohere",
    "/models/rerank": "zeroentropy",
    "/v1/models/rerank": "zeroentropy",
    "/chat/completions": "openai",
    "/v1/chat/completions": "openai",
}
_WORD = re.compile(r"\w+")

ScoreFn = Callable[[str, str], float]
ChatHandler = Callable[[dict[str, Any]], "dict[str, Any] | str"]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def word_overlap(query: str, doc: str) -> float:
    """Default relevance: share of the query's lowercase ``\\w+`` words that occur in ``doc`` (0..1)."""
    q = _words(query)
    return len(q & _words(doc)) / len(q) if q else 0.0


#: The sample request the hosted and LLM tests send.
QUERY = "cat on mat"
DOCS = ["the cat sat on the mat", "dogs bark loudly", "a cat and a dog", "nothing relevant here"]


def expected_order(docs: list[str] = DOCS, query: str = QUERY) -> list[int]:
    """Input positions best first, by the fake server's scoring rule (stable on ties)."""
    return sorted(range(len(docs)), key=lambda i: -word_overlap(query, docs[i]))


def default_chat_handler(request: dict[str, Any]) -> dict[str, Any] | str:
    """Default chat answer: the string ``"0.5"``."""
    return "0.5"


class CIDict(dict[str, str]):
    """Minimal case-insensitive ``str -> str`` dict (keys stored lowercase)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class Fault:
    """One scripted answer, consumed by one request to its provider.

    Applied in order: ``delay`` seconds of sleep; ``close`` drops the connection unanswered; ``raw`` bytes are
    sent as is (status defaults to 200); ``body`` is sent as JSON; a ``status`` >= 400 without body sends a
    provider-style JSON error; otherwise the normal answer, passed through ``mutate`` (which returns the new
    JSON, or None after editing in place), is sent with ``status`` (default 200). ``headers`` always apply.
    With ``drip`` (seconds), the status line and headers go at once and the body follows one byte every
    ``drip`` seconds, until it is all sent or the client goes away.
    """

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    mutate: Callable[[Any], Any] | None = None
    close: bool = False
    drip: float | None = None

    @classmethod
    def rate_limited(cls, retry_after_ms: int = 1) -> Fault:
        """A 429 with ``retry-after-ms`` (fast SDK retries)."""
        return cls(status=429, headers={"retry-after-ms": str(retry_after_ms)})


@dataclass
class RecordedRequest:
    """A request as the server saw it."""

    provider: str
    method: str
    path: str
    headers: CIDict
    body: Any
    raw_body: bytes


def error_body(status: int, message: str) -> dict[str, Any]:
    """Error JSON readable by all three SDKs (Cohere ``message``, OpenAI/ZeroEntropy ``error``)."""
    return {"message": message, "error": {"message": message, "type": "fake_api_error", "code": status}}


class FakeApiServer(ThreadingHTTPServer):
    """Threading HTTP server on 127.0.0.1 speaking Cohere v2, ZeroEntropy and OpenAI chat formats."""

    request_queue_size = 128  # many simultaneous connects in concurrency tests
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._scripts: dict[str, deque[Fault]] = {p: deque() for p in PROVIDERS}
        self.requests: list[RecordedRequest] = []
        self.latency: dict[str, float] = {}
        self.score_fn: ScoreFn = word_overlap
        self.chat_handler: ChatHandler = default_chat_handler
        self.in_flight = 0  # requests being answered now (since the last reset)
        self.most_in_flight = 0  # the most answered at once (since the last reset)
        self._flight = threading.Condition()
        self._generation = 0  # bumped by reset(): requests from before it no longer count
        self._hold: int | None = None
        self._hold_seconds = 0.0
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-api", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def script(self, provider: str, *faults: Fault) -> None:
        """Queue faults (FIFO) for the next requests to ``provider``."""
        if provider not in self._scripts:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        with self._lock:
            self._scripts[provider].extend(faults)

    def pending(self, provider: str) -> int:
        """Number of queued faults not yet consumed for ``provider``."""
        with self._lock:
            return len(self._scripts[provider])

    def requests_for(self, provider: str) -> list[RecordedRequest]:
        """Recorded requests to ``provider``, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.provider == provider]

    def hold_until(self, count: int, timeout: float = 10.0) -> None:
        """Hold each request, before its latency and answer, until ``count`` requests are in flight at once;
        from then on none is held. A request held ``timeout`` seconds gives up and opens the gate for all,
        so a client that never overlaps that many requests ends with ``most_in_flight < count``, not a hang.
        """
        with self._flight:
            self._hold, self._hold_seconds = count, timeout
            self._flight.notify_all()

    def reset(self) -> None:
        """Clear scripts, records, latency, the in-flight counts and the hold; restore the default scorer
        and chat handler. Requests still being answered from before do not count afterwards."""
        with self._lock:
            for queue in self._scripts.values():
                queue.clear()
            self.requests.clear()
            self.latency.clear()
            self.score_fn = word_overlap
            self.chat_handler = default_chat_handler
        with self._flight:
            self._generation += 1
            self.in_flight = self.most_in_flight = 0
            self._hold = None
            self._flight.notify_all()

    def start(self) -> FakeApiServer:
        """Serve in a daemon thread; returns self."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake sleeping and held handlers and close the socket (idempotent)."""
        self._closing.set()
        with self._flight:
            self._flight.notify_all()
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, rec: RecordedRequest) -> Fault | None:
        with self._lock:
            self.requests.append(rec)
            queue = self._scripts.get(rec.provider)
            return queue.popleft() if queue else None

    def _arrive(self) -> int:
        """Count a request in flight and hold it while ``hold_until`` asks; its generation."""
        with self._flight:
            generation = self._generation
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            if self._hold is not None and self.in_flight >= self._hold:
                self._hold = None
                self._flight.notify_all()
            give_up = time.monotonic() + self._hold_seconds
            while self._hold is not None and generation == self._generation and not self._closing.is_set():
                left = give_up - time.monotonic()
                if left <= 0:
                    self._hold = None  # never reached: let everyone through, the test's count will say so
                    self._flight.notify_all()
                    break
                self._flight.wait(left)
            return generation

    def _depart(self, generation: int) -> None:
        with self._flight:
            if generation == self._generation:
                self.in_flight -= 1

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._closing.wait(seconds)

    # ---- normal answers -------------------------------------------------------------------------
    def _ranked(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        query, docs = body.get("query"), body.get("documents")
        if not (isinstance(query, str) and isinstance(docs, list) and all(isinstance(d, str) for d in docs)):
            raise ValueError("'query' must be a string and 'documents' a list of strings")
        scored = [{"index": i, "relevance_score": float(self.score_fn(query, d))} for i, d in enumerate(docs)]
        scored.sort(key=lambda r: -r["relevance_score"])
        top_n = body.get("top_n")
        return scored[:top_n] if isinstance(top_n, int) and top_n >= 0 else scored

    def answer(self, provider: str, body: dict[str, Any]) -> dict[str, Any]:
        """The normal (fault-free) JSON answer for ``provider``; raises ValueError on a bad request."""
        if provider == "cohere":
            return {
                "id": str(uuid.uuid4()),
                "results": self._ranked(body),
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            }
        if provider == "zeroentropy":
            results = self._ranked(body)
            texts = [body["query"], *body["documents"]]
            return {
                "results": results,
                "actual_latency_mode": body.get("latency") or "fast",
                "e2e_latency": 0.01,
                "inference_latency": 0.01,
                "total_bytes": sum(len(t.encode()) for t in texts),
                "total_tokens": sum(len(_WORD.findall(t)) for t in texts),
            }
        return self._chat(body)

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("messages"), list):
            raise ValueError("'messages' must be a list")
        out = self.chat_handler(body)
        spec: dict[str, Any] = {"content": out} if isinstance(out, str) else dict(out)
        content = str(spec.get("content", ""))
        prompt = " ".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
        p_tok, c_tok = len(_WORD.findall(prompt)), len(_WORD.findall(content))
        usage = {"prompt_tokens": p_tok, "completion_tokens": c_tok, "total_tokens": p_tok + c_tok}
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "finish_reason": spec.get("finish_reason", "stop"),
            "logprobs": None,
        }
        if spec.get("logprobs") is not None:
            choice["logprobs"] = {"content": [_token_logprob(t) for t in spec["logprobs"]], "refusal": None}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [choice],
            "usage": spec.get("usage", usage),
        }


def _token_logprob(item: dict[str, Any]) -> dict[str, Any]:
    """Fill ``bytes`` (and nested ``top_logprobs``) in an OpenAI token-logprob entry."""
    token = str(item["token"])
    tops = [{"bytes": list(str(t["token"]).encode()), **t} for t in item.get("top_logprobs", [])]
    return {"bytes": list(token.encode()), **item, "top_logprobs": tops}


class _Handler(BaseHTTPRequestHandler):
    """Routes a request, applies the scripted fault and writes the answer."""

    server: FakeApiServer
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        path = self.path.split("?", 1)[0]
        provider = ROUTES.get(path, "unknown")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        rec = RecordedRequest(provider, self.command, path, CIDict(self.headers.items()), body, raw)
        fault = self.server._record(rec) or Fault()
        generation = self.server._arrive()
        try:
            self._answer(provider, path, body, fault)
        finally:
            self.server._depart(generation)

    def _answer(self, provider: str, path: str, body: Any, fault: Fault) -> None:
        self.server._sleep(self.server.latency.get(provider, 0.0) + fault.delay)
        if fault.close:
            self.close_connection = True
            return
        if fault.raw is not None:
            return self._send(fault.status or 200, fault.raw, fault)
        if fault.body is not None:
            return self._send_json(fault.status or 200, fault.body, fault)
        if fault.status is not None and fault.status >= 400:
            return self._send_json(fault.status, error_body(fault.status, "scripted fault"), fault)
        if provider == "unknown" or self.command != "POST":
            return self._send_json(404, error_body(404, f"no route for {self.command} {path}"), fault)
        if not isinstance(body, dict):
            return self._send_json(400, error_body(400, "body must be a JSON object"), fault)
        try:
            payload = self.server.answer(provider, body)
        except (ValueError, KeyError, TypeError) as exc:
            return self._send_json(400, error_body(400, str(exc)), fault)
        if fault.mutate is not None:
            mutated = fault.mutate(payload)
            payload = payload if mutated is None else mutated
        self._send_json(fault.status or 200, payload, fault)

    def _send_json(self, status: int, obj: Any, fault: Fault) -> None:
        self._send(status, json.dumps(obj).encode(), fault)

    def _send(self, status: int, data: bytes, fault: Fault) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in fault.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if fault.drip is None:
                self.wfile.write(data)
                return
            self.wfile.flush()
            for i in range(len(data)):
                if self.server._closing.wait(fault.drip):
                    self.close_connection = True
                    return
                self.wfile.write(data[i : i + 1])
        except OSError:  # client gave up (e.g. timed out) while we slept
            self.close_connection = True


def start_fake_api() -> FakeApiServer:
    """Start a fake API server on 127.0.0.1 (random port) in a daemon thread; call ``close()`` when done."""
    return FakeApiServer().start()


# ---- loopback guard -----------------------------------------------------------------------------
def is_loopback_host(host: Any) -> bool:
    """True for localhost, 127.0.0.0/8, ::1 (and IPv4-mapped loopback); host names are never resolved."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.split("%", 1)[0].strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name other than localhost: never resolved, blocked
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _check(address: Any, family: int | None = None) -> None:
    unix = getattr(socket, "AF_UNIX", None)
    if (family is not None and family == unix) or isinstance(address, str | bytes):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_loopback_host(host):
        port = address[1] if isinstance(address, tuple) and len(address) > 1 else "?"
        raise RuntimeError(f"network access to {host}:{port} blocked in tests")


def install_loopback_guard() -> Callable[[], None]:
    """Make connections to anything but loopback / AF_UNIX raise RuntimeError; returns an undo function."""
    orig_connect, orig_connect_ex = socket.socket.connect, socket.socket.connect_ex
    orig_create = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        _check(address, self.family)
        return orig_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(address, self.family)
        return orig_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        _check(address)
        return orig_create(address, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.create_connection = create_connection

    def undo() -> None:
        socket.socket.connect = orig_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = orig_connect_ex  # type: ignore[method-assign]
        socket.create_connection = orig_create

    return undo
