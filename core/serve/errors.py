"""HTTP errors the server answers with: a status, a message naming the cause, a metrics reason."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from core.errors import ProviderError
from core.serve.asgi import Send


class HttpError(Exception):
    """An error answer: ``{"message": ...}`` with ``status`` (Cohere's error body shape)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = dict(headers or {})
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body: the message, and for invalid input each field's problem."""
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    async def send(self, send: Send) -> None:
        """Answer with this error straight from ASGI (for middlewares, before the app runs)."""
        payload = json.dumps(self.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def retry_after(seconds: float) -> dict[str, str]:
    """A ``Retry-After`` header (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, round(seconds)))}


def provider_failure(error: ProviderError) -> HttpError:
    """503 when the provider is unavailable for now (retryable), else 502; the reason in the message."""
    if error.retryable:
        wait = error.retry_after if error.retry_after is not None else 1.0
        return HttpError(503, f"reranker unavailable: {error}", reason="provider", headers=retry_after(wait))
    return HttpError(502, f"reranker failed: {error}", reason="provider")


def field_errors(errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic / FastAPI validation errors as ``{"field": "documents.2", "message": ...}``."""
    out = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append({"field": ".".join(location) or "body", "message": message})
    return out


def validation_error(errors: list[Any]) -> HttpError:
    """422 naming every invalid field."""
    fields = field_errors(errors)
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in fields)
    return HttpError(422, f"invalid request: {summary}", reason="invalid", errors=fields)
