"""Building hosted rerankers aimed at the fake API server, with test-sized resilience settings."""

from __future__ import annotations

from typing import Any

import pytest

from core.providers.hosted.base import ApiReranker
from core.providers.hosted.retry import RetryPolicy
from core.registry import create_reranker
from tests.support.fake_api import DOCS, QUERY, FakeApiServer, expected_order

__all__ = [
    "DOCS",
    "FAST",
    "HOSTED",
    "PATIENT",
    "QUERY",
    "WIRE",
    "expected_order",
    "hosted",
    "record_retry_waits",
]

#: Our provider name -> the fake server's name for its wire format.
WIRE = {"cohere": "cohere", "zero_entropy": "zeroentropy"}
HOSTED = tuple(WIRE)

#: Fast, test-sized resilience settings.
FAST = {"timeout": 2.0, "deadline": 5.0, "max_retries": 3, "max_retry_wait": 0.01}
#: For requests held at the fake server (``hold_until``, 10 s at most): no attempt times out while held.
PATIENT = {"timeout": 30.0, "deadline": 60.0}


def hosted(provider: str, server: FakeApiServer | str, **config: Any) -> ApiReranker:
    """A ``provider`` reranker aimed at ``server`` (or a base URL), key "k", fast retries, client ready."""
    base_url = server if isinstance(server, str) else server.url
    reranker = create_reranker(
        {"provider": provider, "config": {"api_key": "k", "base_url": base_url, **FAST, **config}}
    )
    assert isinstance(reranker, ApiReranker)
    reranker.warmup()  # the first SDK client costs ~1 s of imports: keep it out of timed calls
    return reranker


def record_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds each retry policy sleeps before each retry from now on, in order (tenacity's
    ``before_sleep`` hook sees the wait the policy planned, just before it is slept)."""
    waits: list[float] = []
    schedule = RetryPolicy._schedule

    def recording(policy: RetryPolicy) -> dict[str, Any]:
        return {**schedule(policy), "before_sleep": lambda state: waits.append(state.upcoming_sleep)}

    monkeypatch.setattr(RetryPolicy, "_schedule", recording)
    return waits
