"""The batch queue on its own: grouping rules, dropped timeouts, draining on stop, checked results."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from core.errors import ProviderError
from core.serve.batching import BatchQueue


class Recorder:
    """A ``score_many`` that records its groups and can hold the model thread."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        self.groups.append([query for query, _ in requests])
        self.hold.wait(timeout=30)
        return [[float(len(text)) for text in texts] for _, texts in requests]


async def until(condition: Callable[[], object], what: str) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_nothing_arriving_means_no_wait() -> None:
    """With a wait bound of an hour and nobody arriving, a request is scored at once."""
    recorder = Recorder()
    queue = BatchQueue(recorder, max_pairs=100, max_wait=3600, arriving=lambda: False)
    queue.start()
    assert await asyncio.wait_for(queue.score("q", ["ab", "c"]), 30) == [2.0, 1.0]
    await queue.stop()
    assert recorder.groups == [["q"]]


async def test_the_wait_is_bounded_while_others_keep_arriving() -> None:
    recorder = Recorder()
    queue = BatchQueue(recorder, max_pairs=100, max_wait=0.01, arriving=lambda: True)
    queue.start()
    assert await asyncio.wait_for(queue.score("q", ["x"]), 30) == [1.0]
    await queue.stop()


async def test_queued_requests_are_grouped_up_to_max_pairs_and_timeouts_dropped() -> None:
    recorder = Recorder()
    batches: list[tuple[int, int]] = []
    queue = BatchQueue(recorder, max_pairs=5, max_wait=0, on_batch=lambda r, p: batches.append((r, p)))
    queue.start()
    recorder.hold.clear()
    first = asyncio.create_task(queue.score("first", ["a"]))
    await until(lambda: recorder.groups, "the first group")
    tasks = {name: asyncio.create_task(queue.score(name, ["a", "b"])) for name in ("q1", "gone", "q2", "q3")}
    await until(lambda: queue.outstanding == 5, "the queue")
    tasks["gone"].cancel()  # like a request that hit its timeout while queued
    await until(lambda: queue.outstanding == 4, "the cancellation")
    recorder.hold.set()
    assert await first == [1.0]
    assert [await tasks[name] for name in ("q1", "q2", "q3")] == [[1.0, 1.0]] * 3
    await queue.stop()
    assert recorder.groups == [["first"], ["q1", "q2", "q3"]]  # 2 + 2 < 5, then 6 >= 5 closes the group
    assert batches == [(1, 1), (3, 6)]


async def test_stop_scores_what_is_queued() -> None:
    recorder = Recorder()
    queue = BatchQueue(recorder, max_pairs=1, max_wait=0)
    queue.start()
    recorder.hold.clear()
    tasks = [asyncio.create_task(queue.score(f"q{i}", ["x"])) for i in range(3)]
    await until(lambda: queue.outstanding == 3 and recorder.groups, "the queue")
    stopping = asyncio.create_task(queue.stop())
    recorder.hold.set()
    await stopping
    assert [await t for t in tasks] == [[1.0]] * 3 and len(recorder.groups) == 3


async def test_a_score_many_with_the_wrong_count_is_a_provider_error() -> None:
    queue = BatchQueue(lambda requests: [], max_pairs=10, max_wait=0)
    queue.start()
    with pytest.raises(ProviderError, match="0 score lists for 1 requests"):
        await queue.score("a", ["x"])
    await queue.stop()


async def test_a_request_that_timed_out_while_queued_does_not_open_a_group() -> None:
    recorder = Recorder()
    queue = BatchQueue(recorder, max_pairs=5, max_wait=0)
    queue.start()
    recorder.hold.clear()
    first = asyncio.create_task(queue.score("first", ["a"]))
    await until(lambda: recorder.groups, "the first group")
    gone = asyncio.create_task(queue.score("gone", ["a", "b", "c", "d"]))  # 4 of the group's 5 pairs
    live = [asyncio.create_task(queue.score(name, ["a"])) for name in ("q1", "q2")]
    await until(lambda: queue.outstanding == 4, "the queue")
    gone.cancel()
    await until(lambda: queue.outstanding == 3, "the cancellation")
    recorder.hold.set()
    assert await first == [1.0] and [await t for t in live] == [[1.0], [1.0]]
    await queue.stop()
    assert recorder.groups == [["first"], ["q1", "q2"]]  # "gone" counted would close [q1], then [q2]
