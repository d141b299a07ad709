"""Ranking metrics computed by ``pytrec_eval`` (trec_eval itself), per query and averaged.

Gain: ``ndcg@10`` is trec_eval's ``ndcg_cut.10``, whose gain is the relevance grade itself
(linear gain, as ranx's ``ndcg`` too). ``ndcg@10_exp`` is the exponential-gain variant
(``2**grade - 1``, Burges et al.; ranx's ``ndcg_burges``), computed by the same evaluator on
qrels whose grades are mapped to their exponential gain. With binary judgements both agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.deps import require
from core.errors import InvalidInputError
from core.evaluation.beir import Qrels

#: Metrics reported for every query, in display order.
METRICS = ("ndcg@10", "ndcg@10_exp", "mrr@10", "recall@10", "recall@100")
#: What the report says about its gain.
GAIN = "linear (trec_eval / pytrec_eval ndcg_cut, ranx 'ndcg'); ndcg@10_exp uses exponential gain 2^rel - 1"

_TREC_MEASURES = {"ndcg_cut.10", "recall.10,100"}


def _evaluator(qrels: Qrels, measures: set[str], relevance_level: int) -> Any:
    pytrec_eval = require("pytrec_eval", extra="eval", provider="evaluation")
    return pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=relevance_level)


def _rank_scores(
    run: Mapping[str, Sequence[tuple[str, float]]], depth: int | None = None
) -> dict[str, dict[str, float]]:
    """Scores that encode each list's order, so ties are evaluated in the order they were ranked."""
    out: dict[str, dict[str, float]] = {}
    for qid, ranked in run.items():
        kept = ranked if depth is None else ranked[:depth]
        if kept:
            out[qid] = {doc: float(len(kept) - i) for i, (doc, _) in enumerate(kept)}
    return out


def evaluate_run(
    qrels: Qrels,
    run: Mapping[str, Sequence[tuple[str, float]]],
    relevance_level: int = 1,
) -> dict[str, dict[str, float]]:
    """``query id -> {metric: value}`` for every query that has judgements and candidates.

    Each list is evaluated in its given order (best first). A document counts as relevant
    for MRR and recall when its grade is at least ``relevance_level``.
    """
    if relevance_level < 1:
        raise InvalidInputError(f"relevance_level must be >= 1, got {relevance_level}")
    judged = {qid: {doc: int(g) for doc, g in docs.items()} for qid, docs in qrels.items()}
    ordered = {qid: docs for qid, docs in _rank_scores(run).items() if qid in judged}
    if not ordered:
        return {}
    main = _evaluator(judged, _TREC_MEASURES, relevance_level).evaluate(ordered)
    exp_qrels = {
        qid: {doc: 2**g - 1 if g > 0 else g for doc, g in docs.items()} for qid, docs in judged.items()
    }
    exp = _evaluator(exp_qrels, {"ndcg_cut.10"}, relevance_level).evaluate(ordered)
    top10 = {qid: docs for qid, docs in _rank_scores(run, 10).items() if qid in judged}
    rr = _evaluator(judged, {"recip_rank"}, relevance_level).evaluate(top10)
    return {
        qid: {
            "ndcg@10": main[qid]["ndcg_cut_10"],
            "ndcg@10_exp": exp[qid]["ndcg_cut_10"],
            "mrr@10": rr[qid]["recip_rank"],
            "recall@10": main[qid]["recall_10"],
            "recall@100": main[qid]["recall_100"],
        }
        for qid in ordered
    }


def mean_metrics(
    per_query: Mapping[str, Mapping[str, float]], metrics: Iterable[str] = METRICS
) -> dict[str, float]:
    """The mean of each metric over the queries in ``per_query`` (NaN when there are none)."""
    names = list(metrics)
    if not per_query:
        return {name: math.nan for name in names}
    return {name: sum(values[name] for values in per_query.values()) / len(per_query) for name in names}
