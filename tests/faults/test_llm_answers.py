"""Groups 4 and 8 (LLM answers): long answers parse in linear time inside the deadline, an answer cut
by ``max_tokens`` is not read as a score, and an endpoint refusing logprobs falls back to pointwise.

Answers come from the fake OpenAI-compatible server through the real openai SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.providers.llm.parsing import MAX_ANSWER_CHARS, parse_score
from core.providers.llm.permutation import parse_permutation
from core.providers.llm.pointwise import NEUTRAL_SCORE
from core.providers.llm.reranker import LLMReranker
from tests.support.fake_api import DOCS, QUERY, FakeApiServer
from tests.support.hosted_support import hosted

ROOT = Path(__file__).resolve().parents[2]
DIGITS = "9" * 100_000
#: Pieces of answers the parser's patterns care about: numbers, signs, separators, labels, scale words, tags.
TOKENS = ["9", "0.5", "1.", "-", "+", " ", "\n", "/", "%", ":", "=", "*", '"', "score", "rating", "is", "of"]
TOKENS += ["out of", "to", "and", "from", "between", "scale", "[1]", ">", "<think>", "</think>", "{", "}"]


def llm(server: FakeApiServer, **config: Any) -> LLMReranker:
    reranker = hosted("llm_reranker", server.url + "/v1", cache_size=0, **config)
    assert isinstance(reranker, LLMReranker)
    return reranker


def prompt(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


# --- group 4: long answers ----------------------------------------------------------------------
#: Run in a child process, killed after 60 s: a backtracking parser holds the GIL in C for minutes,
#: where no in-process timeout can stop it.
_CALLS = """
import asyncio, json, sys, time
from core.registry import create_reranker
from tests.support.fake_api import DOCS, QUERY

config = {"api_key": "k", "base_url": sys.argv[1], "timeout": 2.0, "deadline": 2.0, "max_retries": 0}
reranker = create_reranker({"provider": "llm_reranker", "config": {**config, "cache_size": 0}})
reranker.warmup()
report = {}
for name, call in (("sync", lambda: reranker.rerank(QUERY, DOCS)),
                   ("async", lambda: asyncio.run(reranker.arerank(QUERY, DOCS)))):
    start = time.monotonic()
    out = call()
    report[name] = {"seconds": time.monotonic() - start, "docs": [dict(d) for d in out]}
print(json.dumps(report))
"""


def test_a_100k_digit_answer_is_read_within_the_deadline(server: FakeApiServer) -> None:
    def answer(body: dict[str, Any]) -> str:
        if DOCS[1] in prompt(body):  # long reasoning, then a score: still read
            return f"<think>{DIGITS}</think> 0.8"
        return DIGITS

    server.chat_handler = answer
    report = json.loads(_child(_CALLS, server.url + "/v1"))
    for name, call in report.items():
        # ~0.05 s on an idle machine; the bound leaves room for a loaded one and is far from the
        # minutes a backtracking parser takes (the 60 s kill ends those first).
        assert call["seconds"] <= 2.0 + 3, f"{name}: {call['seconds']:.1f}s with deadline=2"
        first, *rest = call["docs"]
        assert first["text"] == DOCS[1] and first["rerank_score"] == pytest.approx(0.8)
        for doc in rest:
            assert doc["rerank_score"] == NEUTRAL_SCORE
            assert f"longer than the {MAX_ANSWER_CHARS} read" in doc["rerank_error"]


def _child(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter (killed after 60 s); its stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the child process ran for over a minute")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


#: Run in a child process too (1M characters would take a backtracking parser hours; linear: ~1 s).
_SHAPES = """
from core.providers.llm.parsing import MAX_ANSWER_CHARS, parse_score
from core.providers.llm.permutation import parse_permutation

units = ["9", "1-", "1 ", "1.", "score ", "score" + " " * 50, "from 1 to ", "-", "[1] ", "<think>"]
for unit in units:
    at_limit = (unit * (MAX_ANSWER_CHARS // len(unit) + 1))[:MAX_ANSWER_CHARS]
    value = parse_score(at_limit).value
    assert value is None or 0.0 <= value <= 1.0, (unit, value)
    assert sorted(parse_permutation(at_limit, 20).order) == list(range(20)), unit
    huge = unit * (1_000_000 // len(unit))
    problem = str(parse_score(huge).problem)
    assert "longer than" in problem or (unit == "<think>" and problem == "empty answer"), (unit, problem)
    assert parse_permutation(huge, 20).found == 0, unit
print("parsed")
"""


def test_answers_at_and_far_past_the_read_limit_parse_without_backtracking() -> None:
    assert _child(_SHAPES).strip() == "parsed"


@pytest.mark.timeout(60)
@settings(max_examples=40, deadline=None)
@given(
    tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=6),
    run=st.integers(min_value=5_000, max_value=MAX_ANSWER_CHARS),
)
def test_any_answer_with_a_long_number_up_to_the_read_limit_parses(tokens: list[str], run: int) -> None:
    """Answer-like tokens repeated, then a run of digits: a backtracking parser takes seconds on each (a
    minute for the examples), a linear one milliseconds."""
    unit = "".join(tokens)
    text = (unit * (MAX_ANSWER_CHARS // len(unit) + 1))[: MAX_ANSWER_CHARS - run] + "9" * run
    assert _valid(parse_score(text, 10.0).value)
    assert sorted(parse_permutation(text, 20).order) == list(range(20))


def _valid(value: float | None) -> bool:
    return value is None or 0.0 <= value <= 1.0


# --- group 8: cut answers, refused logprobs ------------------------------------------------------
def test_an_answer_cut_inside_its_number_is_flagged_not_scored(server: FakeApiServer) -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if DOCS[0] in prompt(body):
            return {"content": "0.", "finish_reason": "length"}  # "0.85" cut after two tokens
        if DOCS[2] in prompt(body):
            return {"content": "Score: 0.9, because the document", "finish_reason": "length"}
        return {"content": "0.2"}

    server.chat_handler = answer
    out = {d["text"]: d for d in llm(server).rerank(QUERY, DOCS)}
    cut = out[DOCS[0]]
    assert cut["rerank_score"] == NEUTRAL_SCORE and "max_tokens=100" in cut["rerank_error"]
    assert out[DOCS[2]]["rerank_score"] == pytest.approx(0.9) and "rerank_error" not in out[DOCS[2]]
    assert out[DOCS[1]]["rerank_score"] == pytest.approx(0.2)


def test_an_endpoint_refusing_logprobs_is_scored_pointwise(server: FakeApiServer) -> None:
    refuse_all = True

    def answer(body: dict[str, Any]) -> str:
        if refuse_all or body.get("logprobs"):
            raise ValueError("logprobs: this model does not support it")  # the fake answers 400
        return "0.9" if DOCS[0] in prompt(body) else "0.1"

    server.chat_handler = answer
    reranker = llm(server, mode="logprobs", max_retries=0)
    down = reranker.rerank(QUERY, DOCS)  # a 400 that pointwise gets too is not about logprobs
    assert down.error and reranker.pointwise.logprobs_available

    refuse_all = False
    out = reranker.rerank(QUERY, DOCS)
    assert out.error is None and out[0]["text"] == DOCS[0] and out[0]["rerank_score"] == pytest.approx(0.9)
    assert not reranker.pointwise.logprobs_available
    sent = len(server.requests_for("openai"))
    reranker.rerank(QUERY, DOCS)
    later = [r.body for r in server.requests_for("openai")[sent:]]
    assert len(later) == len(DOCS) and not any(body.get("logprobs") for body in later)
