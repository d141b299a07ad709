"""Pure parsers for LLM relevance answers: a score in text, or P(yes) from token logprobs.

Both return a value in [0, 1] or ``None`` with the reason, and never raise on any text. Parsing
takes time linear in the answer: reasoning blocks are removed in one pass, then at most
``MAX_ANSWER_CHARS`` characters are read, by patterns that start only where a word or number
starts (no pattern can backtrack over a long run of digits or spaces from every position).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import NamedTuple

#: The longest answer read once reasoning is removed; a longer one is not a score answer.
MAX_ANSWER_CHARS = 10_000

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_START = r"(?<![\w.])"  # where a number starts: not inside a word, number or version string
_END = r"(?!\w)(?!\.\d)"  # not the start of a longer word, number or version string
#: A reasoning block (``<think>...</think>``, or unclosed to the end), which is never the answer.
THINK_BLOCK = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_FENCE = re.compile(r"```[a-zA-Z]*")
_JSON_SCORE = re.compile(
    r"[\"']?(?:relevance_score|relevance|score|rating)[\"']?\s*:\s*[\"']?(" + _NUMBER + r")", re.IGNORECASE
)
_FRACTION = re.compile(
    _START + r"(" + _NUMBER + r")\s*(?:/|out\s+of)\s*(" + _NUMBER + r")" + _END, re.IGNORECASE
)
_PERCENT = re.compile(_START + r"(" + _NUMBER + r")\s*%")
# One run of spaces, quotes and asterisks between label and number: adjacent runs of the same
# characters (``\s*[*]*\s*``) could split a long run in quadratically many ways.
_LABELLED = re.compile(
    r"\b(?:relevance\s+score|score|rating|relevance)\b(?:\s*(?:is|of|=|:))?[\s\"'*]*("
    + _NUMBER
    + r")"
    + _END,
    re.IGNORECASE,
)
_SCALE_PHRASE = re.compile(
    r"(?:\b(?:from|between)\s+" + _NUMBER + r"\s+(?:to|and)\s+" + _NUMBER + r")"
    r"|(?:" + _START + _NUMBER + r"\s*(?:-|\u2013|to)\s*" + _NUMBER + r"\s+scale)",
    re.IGNORECASE,
)
_ANY_NUMBER = re.compile(_START + r"(" + _NUMBER + r")" + _END)

YES_TOKENS = frozenset({"yes", "true", "relevant"})
NO_TOKENS = frozenset({"no", "false", "irrelevant"})


class ParsedScore(NamedTuple):
    """A parsed answer: ``value`` in [0, 1], or ``None`` and the ``problem`` that prevented it."""

    value: float | None
    problem: str | None = None


def _fail(problem: str) -> ParsedScore:
    return ParsedScore(None, problem)


def _to_float(text: str) -> float | None:
    try:
        value = float(text)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _on_scale(value: float | None, top: float, what: str) -> ParsedScore:
    if value is None:
        return _fail(f"{what} is not a number")
    if not 0.0 <= value <= top:
        return _fail(f"{what} {value:g} is outside the scale 0-{top:g}")
    return ParsedScore(value / top)


def without_reasoning(text: str) -> str:
    """``text`` with its reasoning blocks (``<think>...</think>``) blanked out."""
    return THINK_BLOCK.sub(" ", text)


def answer_text(answer: str) -> tuple[str, str | None]:
    """The part of ``answer`` to read (reasoning blocks removed), or ``""`` and why it is not read."""
    text = without_reasoning(answer)
    if len(text) > MAX_ANSWER_CHARS:
        return "", f"answer of {len(text)} characters is longer than the {MAX_ANSWER_CHARS} read"
    return text, None


def _clean(text: str) -> str:
    """Drop code fences."""
    return _FENCE.sub(" ", text).strip()


def _json_score(text: str, score_max: float) -> ParsedScore | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return _on_scale(_to_float(str(data)), score_max, "score")
    if isinstance(data, dict):
        for key in ("score", "relevance_score", "relevance", "rating"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    return _fail(f"JSON {key!r} is not a number")
                return _on_scale(_to_float(str(value).strip()), score_max, f"JSON {key!r}")
    match = _JSON_SCORE.search(text)
    if match and "{" in text:
        return _on_scale(_to_float(match.group(1)), score_max, "JSON score")
    return None


def parse_score(answer: object, score_max: float = 1.0) -> ParsedScore:
    """Read a relevance score from an LLM answer and map it to [0, 1].

    Understood, in this order: JSON (``{"score": 0.8}`` or a bare number), a fraction
    (``8/10``, ``8 out of 10``: its own scale), a percentage (``80%``), a labelled number
    (``Score: 0.8``), or the one number in the answer. Plain numbers are read on the
    declared scale ``0..score_max``; a number outside it, several unlabelled numbers,
    no number, an empty answer or one longer than ``MAX_ANSWER_CHARS`` give ``value=None``
    and the problem. ``<think>`` blocks are ignored.
    """
    if not isinstance(answer, str):
        return _fail(f"answer is {type(answer).__name__}, not text")
    if not (math.isfinite(score_max) and score_max > 0):
        return _fail(f"declared scale 0-{score_max} is not valid")
    text, too_long = answer_text(answer)
    if too_long is not None:
        return _fail(too_long)
    text = _clean(text)
    if not text:
        return _fail("empty answer")
    parsed = _json_score(text, score_max)
    if parsed is not None:
        return parsed
    fraction = _FRACTION.search(text)
    if fraction:
        num, den = _to_float(fraction.group(1)), _to_float(fraction.group(2))
        if num is None or den is None or den <= 0:
            return _fail(f"fraction {fraction.group(0)!r} is not a score")
        return _on_scale(num, den, f"fraction {fraction.group(0)!r}:")
    percent = _PERCENT.search(text)
    if percent:
        return _on_scale(_to_float(percent.group(1)), 100.0, "percentage")
    labelled = _LABELLED.search(text)
    if labelled:
        return _on_scale(_to_float(labelled.group(1)), score_max, "score")
    numbers = _ANY_NUMBER.findall(_SCALE_PHRASE.sub(" ", text))
    if not numbers:
        return _fail(f"no score in answer {_excerpt(text)}")
    if len(set(numbers)) > 1:
        return _fail(f"several numbers and no labelled score in answer {_excerpt(text)}")
    return _on_scale(_to_float(numbers[0]), score_max, "score")


def ends_inside_number(answer: str) -> bool:
    """True when ``answer`` ends where a number could go on (a digit, ``.``, ``,``, ``/``, a sign), or
    has nothing to read: what an answer cut by the token limit must not do to be trusted."""
    text, too_long = answer_text(answer)
    text = _clean(text)
    return too_long is not None or not text or text[-1] in "0123456789.,/+-"


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _answer_class(token: str) -> str | None:
    word = token.strip().strip(".,:;!\"'*`()[]").lower()
    if word in YES_TOKENS:
        return "yes"
    if word in NO_TOKENS:
        return "no"
    return None


def yes_probability(top_logprobs: Iterable[tuple[str, float]]) -> ParsedScore:
    """P(yes) from one output position's top logprobs: ``p_yes / (p_yes + p_no)``.

    Tokens count as yes/no after trimming spaces and punctuation, case-insensitively
    (``Yes``, `` yes``, ``YES.``). When only one answer appears among the top tokens, the
    other is given the unlisted probability mass (an upper bound), so a lone ``Yes`` at
    p = 0.6 reads 0.6, not certainty. Neither answer among them: ``value=None``.
    """
    mass = {"yes": 0.0, "no": 0.0}
    listed = 0.0
    try:
        pairs = [(str(token), float(logprob)) for token, logprob in top_logprobs]
    except (TypeError, ValueError):
        return _fail("malformed top logprobs")
    for token, logprob in pairs:
        if math.isnan(logprob) or logprob > 0:
            return _fail(f"invalid logprob {logprob!r} for token {token!r}")
        p = math.exp(logprob)
        listed += p
        answer = _answer_class(token)
        if answer is not None:
            mass[answer] += p
    if mass["yes"] == 0.0 and mass["no"] == 0.0:
        return _fail(f"no yes/no token with non-zero probability among {[t for t, _ in pairs][:5]}")
    rest = max(0.0, 1.0 - listed)
    p_yes = mass["yes"] or rest
    p_no = mass["no"] or rest
    total = p_yes + p_no
    return ParsedScore(min(1.0, max(0.0, p_yes / total)) if total > 0 else 0.5)
