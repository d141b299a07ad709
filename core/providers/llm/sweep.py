"""The listwise sliding window (RankGPT): windows swept bottom-up over the candidates, and rank scores."""

from __future__ import annotations

from collections.abc import Generator, Sequence

#: The sweep: yields the current window (input indices, current order), receives it reordered.
WindowSweep = Generator[list[int], list[int], list[int]]


def sweep_windows(n: int, window: int, step: int) -> list[tuple[int, int]]:
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
    spans = sweep_windows(n, window, step)
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


def rank_scores(order: Sequence[int]) -> list[float]:
    """Scores by input index from a final order: ``(n - rank) / n`` (best 1.0, last 1/n)."""
    n = len(order)
    scores = [0.0] * n
    for rank, index in enumerate(order):
        scores[index] = (n - rank) / n
    return scores
