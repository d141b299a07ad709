"""Building hosted rerankers aimed at the fake API server, with test-sized resilience settings."""

from __future__ import annotations

from typing import Any

from core.providers.hosted.base import ApiReranker
from core.registry import create_reranker
from tests.support.fake_api import DOCS, QUERY, FakeApiServer, expected_order

__all__ = ["DOCS", "FAST", "HOSTED", "QUERY", "WIRE", "expected_order", "hosted"]

#: Our provider name -> the fake server's name for its wire format.
WIRE = {"cohere": "cohere", "zero_entropy": "zeroentropy"}
HOSTED = tuple(WIRE)

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
