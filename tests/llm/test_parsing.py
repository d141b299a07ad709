"""Score parsing for the LLM reranker: every answer shape, and never a crash on any text."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.providers.llm.parsing import parse_score, yes_probability


@pytest.mark.parametrize(
    ("answer", "score_max", "expected"),
    [
        ("0.8", 1, 0.8),
        ("  0.8\n", 1, 0.8),
        (".5", 1, 0.5),
        ("1", 1, 1.0),
        ("0", 1, 0.0),
        ("Score: 0.8", 1, 0.8),
        ("score = 0.35", 1, 0.35),
        ("Relevance score: **0.9**", 1, 0.9),
        ("The relevance score is 0.75.", 1, 0.75),
        ("8/10", 1, 0.8),
        ("I would rate it 7/10.", 1, 0.7),
        ("8 out of 10", 1, 0.8),
        ("3/4", 10, 0.75),  # a fraction carries its own scale
        ("80%", 1, 0.8),
        ("Relevance: 45 %", 10, 0.45),
        ("7", 10, 0.7),
        ("Score: 7", 10, 0.7),
        ("10", 10, 1.0),
        ("7 (on a 0-10 scale)", 10, 0.7),
        ("On a scale from 0 to 1, I give it 0.6", 1, 0.6),
        ('{"score": 0.9}', 1, 0.9),
        ('{"score": "0.9"}', 1, 0.9),
        ('{"relevance_score": 6, "reason": "partly"}', 10, 0.6),
        ('Sure! ```json\n{"score": 0.25}\n```', 1, 0.25),
        ('Here you go: {"score": 8, "why": "close"} hope it helps', 10, 0.8),
        ("<think>maybe 0.1, or 0.2?</think>\n0.9", 1, 0.9),
        ("0.8 0.8", 1, 0.8),  # the same number twice is still one answer
    ],
)
def test_answers_that_carry_a_score(answer: str, score_max: float, expected: float) -> None:
    parsed = parse_score(answer, score_max)
    assert parsed.problem is None
    assert parsed.value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answer", "score_max", "problem"),
    [
        ("", 1, "empty"),
        ("   \n", 1, "empty"),
        ("<think>hmm</think>", 1, "empty"),
        ("I cannot judge this document.", 1, "no score"),
        ("N/A", 1, "no score"),
        ("7", 1, "outside the scale 0-1"),  # a 0-10 answer to a 0-1 question is not guessed at
        ("Score: 1.5", 1, "outside the scale 0-1"),
        ("-0.2", 1, "outside the scale 0-1"),
        ("11", 10, "outside the scale 0-10"),
        ("150%", 1, "outside the scale 0-100"),
        ("12/10", 1, "outside the scale 0-10"),
        ("3/0", 1, "not a score"),
        ('{"score": 1.2}', 1, "outside the scale"),
        ('{"score": null}', 1, "not a number"),
        ('{"score": true}', 1, "not a number"),
        ("NaN", 1, "not a number"),
        ("Infinity", 1, "not a number"),
        ("0.3 or maybe 0.4", 1, "several numbers"),
        ("version 1.2.3", 1, "no score"),
    ],
)
def test_answers_without_a_usable_score_say_why(answer: str, score_max: float, problem: str) -> None:
    parsed = parse_score(answer, score_max)
    assert parsed.value is None
    assert parsed.problem is not None and problem in parsed.problem


def test_non_text_and_bad_scale_are_problems_not_errors() -> None:
    assert parse_score(None).value is None  # type: ignore[arg-type]
    assert parse_score(0.5).problem == "answer is float, not text"  # type: ignore[arg-type]
    assert parse_score("0.5", 0).value is None
    assert parse_score("0.5", math.nan).value is None


@settings(max_examples=400, deadline=None)
@given(st.text(), st.sampled_from([1.0, 5.0, 10.0, 100.0]))
def test_parser_never_raises_and_stays_in_unit_interval(answer: str, score_max: float) -> None:
    parsed = parse_score(answer, score_max)
    if parsed.value is None:
        assert parsed.problem
    else:
        assert 0.0 <= parsed.value <= 1.0 and parsed.problem is None


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=10, allow_nan=False), st.sampled_from(["", "Score: ", "score is "]))
def test_any_in_range_number_round_trips(value: float, prefix: str) -> None:
    text = f"{prefix}{value:.4f}"
    assert parse_score(text, 10).value == pytest.approx(float(f"{value:.4f}") / 10)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["Yes", " yes", "No", "NO.", "maybe", "\n", "Y"]), st.floats(-30, 0)),
        max_size=8,
    )
)
def test_yes_probability_never_raises_and_is_a_probability(pairs: list[tuple[str, float]]) -> None:
    parsed = yes_probability(pairs)
    assert parsed.value is None or 0.0 <= parsed.value <= 1.0


def test_yes_probability_normalises_yes_against_no() -> None:
    parsed = yes_probability([("Yes", math.log(0.6)), ("No", math.log(0.3)), ("Maybe", math.log(0.1))])
    assert parsed.value == pytest.approx(0.6 / 0.9)


def test_yes_variants_are_summed() -> None:
    parsed = yes_probability([("Yes", math.log(0.5)), (" yes", math.log(0.2)), ("No", math.log(0.3))])
    assert parsed.value == pytest.approx(0.7)


def test_a_lone_answer_is_not_certainty() -> None:
    # "No" is not listed: it gets at most the unlisted mass 0.4, so P(yes) = 0.6 / (0.6 + 0.4).
    assert yes_probability([("Yes", math.log(0.6))]).value == pytest.approx(0.6)
    assert yes_probability([("No", math.log(0.9))]).value == pytest.approx(0.1)
    assert yes_probability([("Yes", 0.0)]).value == pytest.approx(1.0)


@pytest.mark.parametrize(
    "pairs", [[], [("Maybe", -0.1)], [("Yes", math.nan)], [("Yes", 0.5)], [("Yes", "x")]]
)
def test_yes_probability_problems(pairs: list[tuple[str, float]]) -> None:
    parsed = yes_probability(pairs)
    assert parsed.value is None and parsed.problem
