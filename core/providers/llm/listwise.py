"""Listwise (RankGPT-style) reranking, pure: permutation parsing, the sliding window, rank scores."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_BRACKETED = re.compile(r"\[\s*(\d{1,9})\s*\]")
_BARE = re.compile(r"(?<![\w.])(\d{1,9})(?![\w]|\.\d)")

#: The sweep: yields the current window (input indices, current order), receives it reordered.
WindowSweep = Generator[list[int], list[int], list[int]]


@dataclass(frozen=True)
class Permutation:
    """A parsed window ranking: ``order`` is always a full permutation of ``range(n)``.

    ``found`` counts the distinct valid ids the answer named (0: nothing usable, the
    window keeps its order); ``missing`` are the positions the model left out, appended
    in their previous relative order; ``problems`` says what was repaired.
    """

    order: list[int]
    found: int
    missing: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_permutation(answer: object, n: int) -> Permutation:
    """Read a ranking of ``n`` items (ids 1..n) from ``answer``, e.g. ``"[2] > [3] > [1]"``.

    Bracketed ids are used when present, else bare integers (``2, 3, 1``). Prose around
    them is ignored; out-of-range and repeated ids are dropped (the first mention wins);
    ids never named keep their relative order after the named ones.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    text = _THINK.sub(" ", answer) if isinstance(answer, str) else ""
    raw = _BRACKETED.findall(text) or _BARE.findall(text)
    order: list[int] = []
    seen: set[int] = set()
    out_of_range: list[int] = []
    repeated: list[int] = []
    for token in raw:
        ident = int(token)
        if not 1 <= ident <= n:
            out_of_range.append(ident)
        elif ident - 1 in seen:
            repeated.append(ident)
        else:
            seen.add(ident - 1)
            order.append(ident - 1)
    missing = [i for i in range(n) if i not in seen]
    problems = []
    if not isinstance(answer, str) or not answer.strip():
        problems.append("empty answer")
    elif not order and n:
        problems.append("no valid ids in answer")
    if out_of_range:
        problems.append(f"out-of-range ids {out_of_range[:10]}")
    if repeated:
        problems.append(f"repeated ids {repeated[:10]}")
    if missing and order:
        problems.append(f"missing ids {[i + 1 for i in missing][:20]}")
    return Permutation(order + missing, len(order), missing, problems)


def window_spans(n: int, window: int, step: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans of one bottom-up sweep; the last one always starts at 0.

    ``n=50, window=20, step=10`` gives ``(30, 50), (20, 40), (10, 30), (0, 20)``.
    """
    if window < 2 or not 1 <= step < window:
        raise ValueError(f"need window >= 2 and 1 <= step < window, got window={window}, step={step}")
    spans = []
    end = n
    while end > 0:
        start = max(0, end - window)
        spans.append((start, end))
        if start == 0:
            break
        end -= step
    return spans


def sliding_window_sweep(n: int, window: int, step: int, passes: int = 1) -> WindowSweep:
    """Rank ``n`` items through windows: yields each window, receives it reordered.

    Each pass sweeps the windows from the bottom of the list to the top, so an item
    can climb ``window - step`` places per window. One pass puts the best
    ``window - step`` items (as the ranker judges) in order at the top; after ``k``
    passes the top ``k * (window - step)`` are in order. A pass that changes nothing
    ends early. Returns the final order of input indices.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    spans = window_spans(n, window, step)
    order = list(range(n))
    for _ in range(passes):
        before = list(order)
        for start, end in spans:
            current = order[start:end]
            ranked = yield list(current)
            if sorted(ranked) != sorted(current):
                raise ValueError(f"window reordering {ranked} is not a permutation of {current}")
            order[start:end] = ranked
        if order == before:
            break
    return order


def run_sweep(sweep: WindowSweep, rank: Callable[[list[int]], list[int]]) -> list[int]:
    """Drive ``sweep`` with a synchronous window ranker; returns the final order."""
    try:
        window = next(sweep)
        while True:
            window = sweep.send(rank(window))
    except StopIteration as done:
        result: list[int] = done.value
        return result


def rank_scores(order: Sequence[int]) -> list[float]:
    """Scores by input index from a final order: ``(n - rank) / n`` (best 1.0, last 1/n)."""
    n = len(order)
    scores = [0.0] * n
    for rank, index in enumerate(order):
        scores[index] = (n - rank) / n
    return scores


async def arun_sweep(sweep: WindowSweep, rank: Callable[[list[int]], Awaitable[list[int]]]) -> list[int]:
    """Drive ``sweep`` with an async window ranker; returns the final order."""
    try:
        window = next(sweep)
        while True:
            window = sweep.send(await rank(window))
    except StopIteration as done:
        result: list[int] = done.value
        return result
