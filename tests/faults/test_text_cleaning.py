"""Group 5: one lone surrogate in one document does not fail the call (issue 13).

The document is scored with U+FFFD in the surrogate's place and a warning names it; every other
document is untouched, and the returned copy keeps the caller's original text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from core import InvalidInputError, create_reranker
from tests.support.fake_api import FakeApiServer
from tests.support.hosted_support import FAST

QUERY = "capital city of france"
BROKEN = "paris is the capital city of france \ud800 and more"
DOCS: list[Any] = [
    {"id": "broken", "text": BROKEN},
    {"id": "pet", "text": "the cat is a small pet animal"},
    "python is a programming language",
]
CLEANED = BROKEN.replace("\ud800", "\ufffd")


def spec(kind: str, server: FakeApiServer, model: Path) -> dict[str, Any]:
    if kind == "huggingface":
        return {"provider": "huggingface", "config": {"model": str(model)}}
    if kind == "llm_reranker":
        return {"provider": kind, "config": {"api_key": "k", "base_url": server.url + "/v1", **FAST}}
    return {"provider": kind, "config": {"api_key": "k", "base_url": server.url, **FAST, "on_error": "raise"}}


def sent_texts(server: FakeApiServer, kind: str) -> list[str]:
    """The document texts the fake server received."""
    wire = {"cohere": "cohere", "zero_entropy": "zeroentropy", "llm_reranker": "openai"}[kind]
    sent = []
    for request in server.requests_for(wire):
        if wire == "openai":
            sent.append(request.raw_body.decode("utf-8"))
        else:
            sent += request.body["documents"]
    return sent


@pytest.mark.parametrize("kind", ["huggingface", "cohere", "zero_entropy", "llm_reranker"])
async def test_one_lone_surrogate_is_cleaned_in_that_document_only(
    kind: str, server: FakeApiServer, tiny_cross_encoder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reranker = create_reranker(spec(kind, server, tiny_cross_encoder))
    with caplog.at_level(logging.WARNING, logger="rerank_layer"):
        outputs = [reranker.rerank(QUERY, DOCS), await reranker.arerank(QUERY, DOCS)]
    for out in outputs:
        assert out.error is None, out.error
        assert len(out) == 3 and all(row["rerank_score"] is not None for row in out)
        broken = next(row for row in out if row.get("id") == "broken")
        assert broken["text"] == BROKEN  # the caller's text, not the cleaned one
        assert "rerank_error" not in broken
    assert DOCS[0]["text"] == BROKEN  # nothing mutated
    assert any("texts[0]" in r.getMessage() and "surrogate" in r.getMessage() for r in caplog.records)
    if kind != "huggingface":
        sent = sent_texts(server, kind)
        assert any(CLEANED in text or "\\ufffd" in text for text in sent), sent
        assert any("the cat is a small pet animal" in text for text in sent)


def test_a_lone_surrogate_in_the_query_is_refused_naming_the_query(server: FakeApiServer) -> None:
    reranker = create_reranker(spec("cohere", server, Path(".")))
    with pytest.raises(InvalidInputError, match=r"query holds a surrogate '\\ud800' at position 3"):
        reranker.rerank("cat\ud800", ["a cat"])
    assert server.requests_for("cohere") == []


def test_clean_text_joins_pairs_and_replaces_lone_surrogates() -> None:
    from core.text import clean_text

    assert clean_text("ok") == "ok"
    assert clean_text("a\ud83d\ude00b") == "a\U0001f600b"  # a pair is the character it encodes
    assert clean_text("\udfff x \ud800") == "\ufffd x \ufffd"
    assert clean_text("x\ud83d") == "x\ufffd"  # a high surrogate without its low half
