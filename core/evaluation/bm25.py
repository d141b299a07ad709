"""A BM25 first stage (rank_bm25's Okapi defaults) for collections that come without a run file."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tqdm import tqdm

from core.deps import require
from core.errors import InvalidInputError
from core.evaluation.beir import BeirDataset, Run

_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lowercased ``\\w+`` tokens."""
    return _WORD.findall(text.lower())


def bm25_run(
    dataset: BeirDataset,
    depth: int = 100,
    query_ids: Sequence[str] | None = None,
    progress: bool = False,
) -> Run:
    """Top-``depth`` BM25Okapi candidates per query over ``title + " " + text``.

    Ties are broken by document id so the run does not depend on corpus order.
    """
    if depth < 1:
        raise InvalidInputError(f"depth must be >= 1, got {depth}")
    rank_bm25 = require("rank_bm25", extra="eval", provider="bm25")
    np = require("numpy", extra="eval", provider="bm25")
    doc_ids = list(dataset.corpus)
    if not doc_ids:
        raise InvalidInputError(f"{dataset.name}: the corpus is empty")
    index = rank_bm25.BM25Okapi([tokenize(dataset.document_text(d)) for d in doc_ids])
    keep = min(depth, len(doc_ids))
    run: Run = {}
    ids = list(query_ids) if query_ids is not None else dataset.judged_query_ids()
    for qid in tqdm(ids, desc="BM25", unit="query", disable=not progress):
        scores = index.get_scores(tokenize(dataset.queries[qid]))
        cutoff = np.partition(scores, len(scores) - keep)[len(scores) - keep]
        contenders = np.flatnonzero(scores >= cutoff)
        best = sorted(contenders, key=lambda i: (-scores[i], doc_ids[i]))[:keep]
        run[qid] = [(doc_ids[i], float(scores[i])) for i in best]
    return run
