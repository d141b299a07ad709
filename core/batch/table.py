"""The in-process engine: rerank a table of rows with one reranker in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.base import BaseReranker
from core.batch.progress import Progress
from core.batch.rows import Outcome, Plan, Shape, Task, check_shape, compose, outcome_of, plan_rows
from core.errors import InvalidInputError
from core.registry import create_reranker
from core.specs import DEFAULT_SPEC, Spec


def build_reranker(spec: Spec | BaseReranker | None) -> BaseReranker:
    """The reranker of ``spec`` (default: the embedded MiniLM), its models and clients loaded."""
    reranker = create_reranker(spec if spec is not None else DEFAULT_SPEC)
    for member in (reranker, *reranker.fallbacks):
        member.warmup()
    return reranker


def default_workers(reranker: BaseReranker) -> int:
    """Queries scored at once: the reranker's ``max_concurrency`` for network providers, else 1."""
    return reranker.config.max_concurrency if reranker.io_bound else 1


def rank_task(reranker: BaseReranker, task: Task) -> Outcome:
    """Rank one task with the reranker's pipeline (fallbacks, then first-stage order on failure)."""
    ranking = reranker.rank(task.query, task.texts, top_k=len(task.texts))
    return outcome_of(ranking, len(task.texts))


def rank_tasks(
    reranker: BaseReranker,
    tasks: Sequence[Task],
    *,
    workers: int = 1,
    done: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Rank every task, ``workers`` at once; ``done(i)`` is called as task ``i`` finishes."""
    if workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}")

    def one(i: int) -> Outcome:
        outcome = rank_task(reranker, tasks[i])
        if done is not None:
            done(i)
        return outcome

    if workers == 1 or len(tasks) < 2:
        return [one(i) for i in range(len(tasks))]
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        return list(pool.map(one, range(len(tasks))))


def rerank_plan(
    reranker: BaseReranker,
    rows: Sequence[Any],
    plan: Plan,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """The output rows of a planned table, unit by unit in plan order."""
    scored = [(i, unit.task) for i, unit in enumerate(plan.units) if unit.task is not None]
    tasks = [task for _, task in scored]

    def done(i: int) -> None:
        if progress is not None:
            progress.advance(len(tasks[i].texts), len(plan.units[scored[i][0]].rows))

    outcomes = rank_tasks(
        reranker, tasks, workers=workers or default_workers(reranker), done=done if progress else None
    )
    by_unit = {unit: outcome for (unit, _), outcome in zip(scored, outcomes, strict=True)}
    out: list[dict[str, Any]] = []
    for i, unit in enumerate(plan.units):
        out.extend(compose(rows, unit, by_unit.get(i), plan.shape))
    if progress is not None:
        progress.advance(0, sum(len(u.bad) + (len(u.rows) if u.task is None else 0) for u in plan.units))
    return out


def rerank_rows(
    reranker: BaseReranker,
    rows: Sequence[Any],
    shape: Shape | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Rerank ``rows`` (grouped or flat) with a built reranker; see :func:`rerank_table`."""
    plan = plan_rows(rows, check_shape(shape, rows), reranker.config.text_key)
    return rerank_plan(reranker, rows, plan, workers=workers, progress=progress)


def rerank_table(
    rows: Sequence[Any],
    spec: Spec | BaseReranker | None = None,
    *,
    shape: Shape | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Rerank a table of rows in this process; returns new rows, nothing dropped.

    ``rows`` are grouped (``query``, ``documents``, optional ``doc_ids``) or flat pairs
    (``query_id``, ``doc_id``, ``query``, ``text``); ``shape`` is detected when None. Each output
    row is a copy with ``rerank_score``, ``rerank_raw_score``, ``rank`` and ``rerank_error``:
    grouped rows get their documents (and ids) sorted best first with the scores as lists; flat
    rows come query by query (first appearance), best first. A reranker that fails keeps the
    first-stage order and sets ``rerank_error``; a bad row is kept with its error. ``workers``:
    queries scored at once (default: ``max_concurrency`` for API providers, else 1).
    """
    row_shape = check_shape(shape, rows)
    reranker = build_reranker(spec)
    plan = plan_rows(rows, row_shape, reranker.config.text_key)
    with Progress(plan.pairs, len(rows), enabled=progress) as bar:
        return rerank_plan(reranker, rows, plan, workers=workers, progress=bar)
