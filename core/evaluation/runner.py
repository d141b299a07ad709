"""Rerank a first-stage run with any reranker, timing each query, and evaluate before and after."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.base import BaseReranker
from core.errors import InvalidInputError
from core.evaluation.beir import BeirDataset, Run, load_beir, read_run
from core.evaluation.bm25 import bm25_run
from core.evaluation.metrics import evaluate_run
from core.evaluation.report import EvaluationReport
from core.registry import create_reranker, reranker_spec
from core.specs import DEFAULT_SPEC
from core.text import validate_top_k

#: Candidates BM25 retrieves when no run is given (at least ``top_n``), so Recall@100 is defined.
BM25_DEPTH = 100


@dataclass
class RerankedRun:
    """A reranked run and what it cost: per-query latency, failures, wall time."""

    run: Run
    latency_s: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    documents: int = 0


def _check_candidates(dataset: BeirDataset, first_stage: Mapping[str, Sequence[tuple[str, float]]]) -> None:
    for qid, ranked in first_stage.items():
        if qid not in dataset.queries:
            raise InvalidInputError(f"the run has query {qid!r}; queries.jsonl lacks it")
        for doc_id, _ in ranked:
            if doc_id not in dataset.corpus:
                raise InvalidInputError(
                    f"the run lists document {doc_id!r} for query {qid!r}; corpus.jsonl lacks it"
                )


def merge_run(
    ranked_head: list[tuple[str, float]], rest: Sequence[tuple[str, float]]
) -> list[tuple[str, float]]:
    """The reranked head, then the remaining candidates in first-stage order, scored below the head."""
    floor = min([0.0, *(score for _, score in ranked_head)])
    return ranked_head + [(doc_id, floor - k) for k, (doc_id, _) in enumerate(rest, 1)]


def _rerank_query(
    reranker: BaseReranker, query: str, head: Sequence[tuple[str, float]], texts: list[str]
) -> tuple[list[tuple[str, float]], list[tuple[str, float]], float, str | None]:
    start = time.perf_counter()
    ranking = reranker.rank(query, texts, top_k=len(texts))
    elapsed = time.perf_counter() - start
    if ranking.failed:
        return list(head), [], elapsed, ranking.error
    ranked = [(head[item.index][0], item.score) for item in ranking.items if item.score is not None]
    kept = {item.index for item in ranking.items if item.score is not None}
    dropped = [pair for i, pair in enumerate(head) if i not in kept]
    return ranked, dropped, elapsed, None


def rerank_run(
    reranker: BaseReranker | dict[str, Any],
    dataset: BeirDataset,
    first_stage: Mapping[str, Sequence[tuple[str, float]]],
    top_n: int = 100,
    *,
    query_ids: Sequence[str] | None = None,
    concurrency: int = 1,
    progress: bool = False,
    warmup: bool = True,
) -> RerankedRun:
    """Rerank each query's top ``top_n`` candidates with ``reranker.rank`` and time every call.

    Each output list holds the reranked head (scored with ``rerank_score``), then any head
    documents the reranker left unscored or dropped (``score_threshold``), then the candidates
    below ``top_n``, in first-stage order. A query whose reranking failed (fail-open) keeps its
    first-stage list and is listed in ``failed``. ``concurrency`` > 1 reranks that many queries
    at once (for API providers); ``warmup`` loads the model and ranks one short list untimed first.
    """
    reranker = create_reranker(reranker)
    if validate_top_k(top_n, "top_n") in (None, 0):
        raise InvalidInputError(f"top_n must be >= 1, got {top_n}")
    if concurrency < 1:
        raise InvalidInputError(f"concurrency must be >= 1, got {concurrency}")
    ids = [qid for qid in (query_ids if query_ids is not None else first_stage) if first_stage.get(qid)]
    _check_candidates(dataset, {qid: first_stage[qid] for qid in ids})
    out = RerankedRun(run={})
    if not ids:
        return out
    if warmup:
        for member in (reranker, *reranker.fallbacks):
            member.warmup()
        first = first_stage[ids[0]][:2]
        reranker.rank(dataset.queries[ids[0]], [dataset.document_text(doc) for doc, _ in first])

    def one(qid: str) -> tuple[str, list[tuple[str, float]], float, str | None]:
        head = first_stage[qid][:top_n]
        texts = [dataset.document_text(doc_id) for doc_id, _ in head]
        ranked, dropped, elapsed, error = _rerank_query(reranker, dataset.queries[qid], head, texts)
        if error is not None:
            return qid, list(first_stage[qid]), elapsed, error
        return qid, merge_run(ranked, [*dropped, *first_stage[qid][top_n:]]), elapsed, None

    start = time.perf_counter()
    bar = tqdm(total=len(ids), desc=f"rerank top-{top_n}", unit="query", disable=not progress)
    results: dict[str, tuple[list[tuple[str, float]], float, str | None]] = {}
    with bar:
        if concurrency == 1:
            for qid in ids:
                _, ranked, elapsed, error = one(qid)
                results[qid] = (ranked, elapsed, error)
                bar.update()
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for future in as_completed([pool.submit(one, qid) for qid in ids]):
                    qid, ranked, elapsed, error = future.result()
                    results[qid] = (ranked, elapsed, error)
                    bar.update()
    out.wall_s = time.perf_counter() - start
    for qid in ids:
        ranked, elapsed, error = results[qid]
        out.run[qid] = ranked
        out.latency_s[qid] = elapsed
        out.documents += min(top_n, len(first_stage[qid]))
        if error is not None:
            out.failed[qid] = error
    return out


def _first_stage(
    dataset: BeirDataset,
    run: str | Path | Mapping[str, Sequence[tuple[str, float]]] | None,
    depth: int,
    max_queries: int | None,
    progress: bool,
) -> tuple[Run, str]:
    if run is None:
        ids = dataset.judged_query_ids()[:max_queries]
        built = bm25_run(dataset, depth=depth, query_ids=ids, progress=progress)
        return built, f"bm25 (rank_bm25 Okapi, top-{depth})"
    if isinstance(run, (str, Path)):
        return read_run(run), str(run)
    return {qid: list(ranked) for qid, ranked in run.items()}, "run given in memory"


def evaluate(
    data: str | Path | BeirDataset,
    reranker: BaseReranker | dict[str, Any] | None = None,
    *,
    run: str | Path | Mapping[str, Sequence[tuple[str, float]]] | None = None,
    top_n: int = 100,
    split: str = "test",
    qrels_file: str | Path | None = None,
    max_queries: int | None = None,
    relevance_level: int = 1,
    concurrency: int = 1,
    progress: bool = True,
) -> EvaluationReport:
    """Measure a reranker on a BEIR folder: metrics before and after reranking, latency, throughput.

    ``reranker`` is a reranker or a spec (default: the embedded all-MiniLM-L6-v2). ``run`` is
    a TREC run file or ``{qid: [(doc, score), ...]}``; without one, BM25 builds the first stage.
    Only judged queries with candidates are evaluated (the first ``max_queries`` of them).
    """
    dataset = data if isinstance(data, BeirDataset) else load_beir(data, split=split, qrels_file=qrels_file)
    model = create_reranker(reranker if reranker is not None else DEFAULT_SPEC)
    if max_queries is not None and max_queries < 1:
        raise InvalidInputError(f"max_queries must be >= 1, got {max_queries}")
    first_stage, source = _first_stage(dataset, run, max(top_n, BM25_DEPTH), max_queries, progress)
    ids = [qid for qid in dataset.judged_query_ids() if first_stage.get(qid)][:max_queries]
    if not ids:
        raise InvalidInputError(f"{dataset.name}: the first-stage run has no candidates for any judged query")
    before_run = {qid: first_stage[qid] for qid in ids}
    reranked = rerank_run(model, dataset, before_run, top_n, concurrency=concurrency, progress=progress)
    return EvaluationReport(
        dataset=dataset.name,
        first_stage=source,
        reranker=reranker_spec(model),
        top_n=top_n,
        relevance_level=relevance_level,
        before=evaluate_run(dataset.qrels, before_run, relevance_level),
        after=evaluate_run(dataset.qrels, reranked.run, relevance_level),
        latency_s=reranked.latency_s,
        failed=reranked.failed,
        wall_s=reranked.wall_s,
        documents=reranked.documents,
        first_stage_run=before_run,
        reranked_run=reranked.run,
        split=dataset.split,
        qrels_file=dataset.qrels_file,
    )
