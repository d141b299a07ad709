"""Reading what a hosted API answered: rerank results, usage counts, error bodies and Retry-After."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from core.errors import ProviderError
from core.results import Scores

#: HTTP statuses worth another attempt.
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    candidates: list[float | None] = []
    if "retry-after-ms" in lowered:
        ms = _as_float(lowered["retry-after-ms"])
        candidates.append(None if ms is None else ms / 1000.0)
    if "retry-after" in lowered:
        value = lowered["retry-after"]
        seconds = _as_float(value)
        if seconds is None:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                seconds = (when - datetime.now(timezone.utc)).total_seconds()
        candidates.append(seconds)
    found = next((c for c in candidates if c is not None), None)
    return None if found is None else max(0.0, found)


def _as_float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def error_message(body: object, default: str = "", limit: int = 300) -> str:
    """The provider's own words from an error body (``message``, ``error.message``, ``detail``), shortened."""
    message: object = body
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            message = error["message"]
        else:
            message = next((body[k] for k in ("message", "detail", "error") if body.get(k)), body)
    text = str(message).strip() if message not in (None, "", b"") else default
    return text if len(text) <= limit else text[: limit - 3] + "..."


def status_error(
    provider: str, status: int, message: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """A ProviderError for an HTTP error status: retryable for 408, 409, 429, 5xx, with Retry-After parsed."""
    return ProviderError(
        message,
        provider=provider,
        status=status,
        retryable=status in RETRYABLE_STATUSES,
        retry_after=retry_after_seconds(headers),
    )


def usage_counts(**values: object) -> dict[str, float]:
    """The numeric ``values`` as usage: an int where the number is whole, a float only where fractional."""
    usage: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        usage[key] = int(value) if float(value).is_integer() else float(value)
    return usage


def _field(item: object, name: str) -> object:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


def scores_from_results(
    results: object, n: int, *, provider: str, usage: Mapping[str, float] | None = None
) -> Scores:
    """Check a rerank API's ``results`` (items with ``index``, ``relevance_score``); scores in input order.

    There must be one result per document, every index an int in ``[0, n)`` and unique, every
    score a finite number; anything else raises a (non-retryable) ProviderError.
    """
    if not isinstance(results, (list, tuple)):
        raise ProviderError(f"response has no results list (got {type(results).__name__})", provider=provider)
    if len(results) != n:
        raise ProviderError(f"got {len(results)} results for {n} documents", provider=provider)
    values: list[float | None] = [None] * n
    for position, item in enumerate(results):
        index, score = _field(item, "index"), _field(item, "relevance_score")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise ProviderError(
                f"result {position} has index {index!r}, not in 0..{n - 1}", provider=provider
            )
        if values[index] is not None:
            raise ProviderError(f"index {index} appears twice in the results", provider=provider)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ProviderError(f"result {position} (index {index}) has score {score!r}", provider=provider)
        values[index] = float(score)
    return Scores([v for v in values if v is not None], usage=usage)
