"""Listwise pieces: permutation parsing, the bottom-up sliding window, rank-derived scores."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.providers.llm.exchange import adrive, drive
from core.providers.llm.permutation import parse_permutation
from core.providers.llm.sweep import rank_scores, sliding_window_sweep, sweep_windows


@pytest.mark.parametrize(
    ("answer", "n", "order", "found"),
    [
        ("[2] > [3] > [1]", 3, [1, 2, 0], 3),
        ("[2]>[3]>[1]", 3, [1, 2, 0], 3),
        ("[ 2 ] > [ 1 ]", 2, [1, 0], 2),
        ("2 > 3 > 1", 3, [1, 2, 0], 3),
        ("2, 3, 1", 3, [1, 2, 0], 3),
        ("Here is the ranking: [3] > [1] > [2]. [3] is clearly best.", 3, [2, 0, 1], 3),  # prose, repeat
        ("[2] > [2] > [1]", 3, [1, 0, 2], 2),  # repeated id, missing id appended
        ("[4] > [9] > [1] > [0]", 4, [3, 0, 1, 2], 2),  # out of range (9, 0) dropped
        ("[3]", 5, [2, 0, 1, 3, 4], 1),  # omitted ids keep their relative order
        ("<think>[1] > [2]?</think>[2] > [1]", 2, [1, 0], 2),
        ("The 3 best: [2] > [1]", 3, [1, 0, 2], 2),  # bare numbers ignored when brackets exist
    ],
)
def test_permutation_parsing(answer: str, n: int, order: list[int], found: int) -> None:
    parsed = parse_permutation(answer, n)
    assert parsed.order == order
    assert parsed.found == found


def test_problems_are_reported() -> None:
    parsed = parse_permutation("Ranking: [2] > [2] > [7]", 3)
    assert parsed.missing == [0, 2]
    assert any("repeated ids [2]" in p for p in parsed.problems)
    assert any("out-of-range ids [7]" in p for p in parsed.problems)
    assert any("missing ids [1, 3]" in p for p in parsed.problems)
    assert parse_permutation("[1] > [2]", 2).problems == []


@pytest.mark.parametrize("answer", ["", "I cannot rank these.", None, "[0] > [5]"])
def test_unusable_answers_keep_the_order(answer: object) -> None:
    parsed = parse_permutation(answer, 3)
    assert parsed.order == [0, 1, 2]
    assert parsed.found == 0 and parsed.problems


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(0, 30))
def test_any_text_gives_a_full_permutation(answer: str, n: int) -> None:
    parsed = parse_permutation(answer, n)
    assert sorted(parsed.order) == list(range(n))
    assert 0 <= parsed.found <= n


@settings(max_examples=200, deadline=None)
@given(
    st.permutations(list(range(12))), st.sampled_from(["[{}]", "{}"]), st.sampled_from([" > ", ", ", "\n"])
)
def test_well_formed_answers_parse_exactly(perm: list[int], fmt: str, sep: str) -> None:
    answer = "Ranking: " + sep.join(fmt.format(i + 1) for i in perm) + ". Done"
    assert parse_permutation(answer, 12).order == perm


def test_window_spans_go_bottom_up_and_end_at_the_top() -> None:
    assert sweep_windows(50, 20, 10) == [(30, 50), (20, 40), (10, 30), (0, 20)]
    assert sweep_windows(25, 20, 10) == [(5, 25), (0, 15)]
    assert sweep_windows(5, 20, 10) == [(0, 5)]
    assert sweep_windows(0, 20, 10) == []
    with pytest.raises(ValueError, match="step < window"):
        sweep_windows(10, 5, 5)


def _perfect(true_rank: list[int]) -> tuple[list[list[int]], object]:
    seen: list[list[int]] = []

    def rank(window: list[int]) -> list[int]:
        seen.append(list(window))
        return sorted(window, key=lambda i: true_rank[i])

    return seen, rank


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 80), st.integers(2, 25), st.data())
def test_one_pass_puts_the_true_top_in_order(n: int, window: int, data: st.DataObject) -> None:
    step = data.draw(st.integers(1, window - 1))
    true_rank = data.draw(st.permutations(list(range(n))))
    seen, rank = _perfect(true_rank)
    order = drive(sliding_window_sweep(n, window, step), rank)  # type: ignore[arg-type]
    best = sorted(range(n), key=lambda i: true_rank[i])
    guaranteed = min(n, window - step)
    assert order[:guaranteed] == best[:guaranteed]
    assert sorted(order) == list(range(n))
    assert all(len(w) <= window for w in seen)


def test_fifty_documents_one_pass_four_windows_true_top_ten() -> None:
    true_rank = list(range(50))
    random.Random(7).shuffle(true_rank)
    seen, rank = _perfect(true_rank)
    order = drive(sliding_window_sweep(50, 20, 10), rank)  # type: ignore[arg-type]
    assert len(seen) == 4 and all(len(w) == 20 for w in seen)
    assert order[:10] == sorted(range(50), key=lambda i: true_rank[i])[:10]


def test_enough_passes_give_the_full_true_order_and_stop_early() -> None:
    true_rank = list(range(50))
    random.Random(11).shuffle(true_rank)
    seen, rank = _perfect(true_rank)
    order = drive(sliding_window_sweep(50, 20, 10, passes=20), rank)  # type: ignore[arg-type]
    assert order == sorted(range(50), key=lambda i: true_rank[i])
    assert len(seen) < 20 * 4  # a sweep that changes nothing ends the passes


def test_an_already_sorted_list_takes_one_pass() -> None:
    seen, rank = _perfect(list(range(30)))
    assert drive(sliding_window_sweep(30, 20, 10, passes=5), rank) == list(range(30))  # type: ignore[arg-type]
    assert len(seen) == 2


def test_the_sweep_refuses_a_reordering_that_is_not_a_permutation() -> None:
    with pytest.raises(ValueError, match="not a permutation"):
        drive(sliding_window_sweep(5, 3, 1), lambda w: w[:-1])


async def test_async_driver_gives_the_same_order() -> None:
    true_rank = list(range(40))
    random.Random(3).shuffle(true_rank)

    async def rank(window: list[int]) -> list[int]:
        return sorted(window, key=lambda i: true_rank[i])

    sync = drive(sliding_window_sweep(40, 20, 10, 3), lambda w: sorted(w, key=lambda i: true_rank[i]))
    assert await adrive(sliding_window_sweep(40, 20, 10, 3), rank) == sync


def test_rank_scores_are_n_minus_rank_over_n() -> None:
    assert rank_scores([2, 0, 1, 3]) == [0.75, 0.5, 1.0, 0.25]
    assert rank_scores([0]) == [1.0]
    assert rank_scores([]) == []
