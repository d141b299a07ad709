"""The in-process engine: both row shapes, bad rows, fail-open, nothing dropped."""

from __future__ import annotations

import copy

import pytest

from core import create_reranker
from core.batch import rerank_table
from core.batch.rows import NOT_KEPT
from core.errors import InvalidInputError
from tests.batch.conftest import OTHER_QUERY, flat_rows, grouped_rows, tiny_spec
from tests.support.fake_api import Fault
from tests.support.hosted_support import FAST
from tests.support.model_factory import QUERY, TEXTS


def direct_scores(model, query, texts):
    """Raw scores by calling the reranker directly, by text."""
    ranking = create_reranker(tiny_spec(model)).rank(query, texts)
    return {texts[item.index]: item.raw_score for item in ranking.items}


def test_grouped_rows_sorted_best_first_with_ids_and_other_columns(tiny_cross_encoder):
    rows = grouped_rows()
    before = copy.deepcopy(rows)
    out = rerank_table(rows, tiny_spec(tiny_cross_encoder))
    assert rows == before  # the caller's rows are not touched
    assert [r["tag"] for r in out] == [1, 2, 3]
    first = out[0]
    expected = direct_scores(tiny_cross_encoder, QUERY, TEXTS)
    assert sorted(first["documents"]) == sorted(TEXTS)
    assert first["rerank_raw_score"] == [pytest.approx(expected[t], abs=1e-6) for t in first["documents"]]
    assert first["rerank_score"] == sorted(first["rerank_score"], reverse=True)
    assert first["doc_ids"] == [f"d{TEXTS.index(t)}" for t in first["documents"]]  # ids travel with texts
    assert first["rank"] == list(range(1, 8)) and first["rerank_error"] is None
    assert sorted(out[1]["documents"]) == sorted(TEXTS) and "doc_ids" not in out[1]
    assert out[2]["documents"] == [] and out[2]["rerank_error"] == "documents must not be empty"


def test_flat_rows_ranked_per_query_in_first_appearance_order(tiny_cross_encoder):
    out = rerank_table(flat_rows(), tiny_spec(tiny_cross_encoder))
    assert len(out) == len(flat_rows())  # nothing dropped
    assert [r["query_id"] for r in out] == ["q1"] * 8 + ["q2"] * 7
    for qid, query in (("q1", QUERY), ("q2", OTHER_QUERY)):
        rows = [r for r in out if r["query_id"] == qid and r["rerank_error"] is None]
        expected = direct_scores(tiny_cross_encoder, query, TEXTS)
        assert [r["rerank_raw_score"] for r in rows] == [
            pytest.approx(expected[r["text"]], abs=1e-6) for r in rows
        ]
        assert [r["rank"] for r in rows] == list(range(1, 8))
        assert [r["rerank_score"] for r in rows] == sorted((r["rerank_score"] for r in rows), reverse=True)
        assert all(r["score"] == 10.0 - TEXTS.index(r["text"]) for r in rows)  # first-stage scores kept
    bad = out[7]
    assert bad["doc_id"] == "q1-bad" and bad["rank"] == 8 and bad["rerank_score"] is None
    assert bad["rerank_error"] == "text must be a string, got int"


def test_bad_rows_reported_per_row_the_rest_processed(tiny_cross_encoder):
    grouped = [
        {"documents": ["a"]},
        {"query": "  ", "documents": ["a"]},
        {"query": QUERY, "documents": "not a list"},
        {"query": QUERY, "documents": ["fine", 7]},
        {"query": QUERY, "documents": ["a", "b"], "doc_ids": ["only one"]},
        {"query": QUERY, "documents": TEXTS[:2]},
    ]
    errors = [r["rerank_error"] for r in rerank_table(grouped, tiny_spec(tiny_cross_encoder))]
    assert errors == [
        "query is missing",
        "query must not be blank",
        "documents must be a list, got str",
        "documents[1] must be a dict or a string, got int",
        "doc_ids must be a list as long as documents",
        None,
    ]
    flat = [
        {"doc_id": "a", "query": QUERY, "text": "x"},
        {"query_id": ["q"], "doc_id": "b", "query": QUERY, "text": "x"},
        {"query_id": "q1", "doc_id": "c", "text": "x"},
        {"query_id": "q1", "doc_id": "d", "query": QUERY, "text": "paris"},
        {"query_id": "q1", "doc_id": "e", "query": "another query", "text": "x"},
        {"query_id": "q1", "doc_id": "f", "query": QUERY},
    ]
    out = {r["doc_id"]: r for r in rerank_table(flat, tiny_spec(tiny_cross_encoder))}
    assert out["a"]["rerank_error"] == "query_id is missing" and out["a"]["rank"] is None
    assert out["b"]["rerank_error"] == "query_id must be a string or an integer, got list"
    assert out["c"]["rerank_error"] == "query is missing"
    assert out["e"]["rerank_error"] == "query differs from the first row of query_id 'q1'"
    assert out["f"]["rerank_error"] == "text is missing"
    assert out["d"]["rerank_error"] is None and out["d"]["rank"] == 1 and out["d"]["rerank_score"] is not None
    assert sorted(r["rank"] for r in out.values() if r.get("query_id") == "q1") == [1, 2, 3, 4]


def test_failing_hosted_provider_keeps_first_stage_order(server):
    server.script("cohere", *[Fault(status=503)] * 8)
    spec = {
        "provider": "cohere",
        "config": {"api_key": "k", "base_url": server.url, **FAST, "max_retries": 0},
    }
    out = rerank_table(flat_rows(), spec, workers=2)
    for qid in ("q1", "q2"):
        rows = [r for r in out if r["query_id"] == qid]
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)  # input order
        assert all(r["rerank_score"] is None for r in rows)
        assert all("503" in r["rerank_error"] for r in rows if r["doc_id"] != "q1-bad")
    assert len(server.requests_for("cohere")) == 2


def test_fallback_scores_when_the_hosted_provider_fails(server, tiny_cross_encoder):
    server.script("cohere", Fault(status=500))
    spec = {
        "provider": "cohere",
        "config": {"api_key": "k", "base_url": server.url, **FAST, "max_retries": 0},
        "fallbacks": [tiny_spec(tiny_cross_encoder)],
    }
    out = rerank_table([{"query": QUERY, "documents": TEXTS}], spec)
    expected = direct_scores(tiny_cross_encoder, QUERY, TEXTS)
    assert out[0]["rerank_error"] is None
    assert out[0]["rerank_raw_score"] == [pytest.approx(expected[t], abs=1e-6) for t in out[0]["documents"]]


def test_score_threshold_drops_nothing(tiny_cross_encoder):
    out = rerank_table(flat_rows(), tiny_spec(tiny_cross_encoder, score_threshold=0.3, top_k=2))
    assert len(out) == len(flat_rows())
    q1 = [r for r in out if r["query_id"] == "q1" and r["doc_id"] != "q1-bad"]
    kept = [r for r in q1 if r["rerank_score"] is not None]
    assert kept and all(r["rerank_score"] >= 0.3 for r in kept) and len(kept) < 7
    assert [r["rerank_error"] for r in q1[len(kept) :]] == [NOT_KEPT] * (7 - len(kept))
    assert [r["rank"] for r in q1] == list(range(1, 8))


def test_progress_bar_counts_pairs_and_rows(tiny_cross_encoder, capsys):
    rerank_table(flat_rows(), tiny_spec(tiny_cross_encoder), progress=True)
    err = capsys.readouterr().err
    assert "pair/s" in err and "rows 15/15" in err


def test_shape_errors_name_the_fields():
    with pytest.raises(InvalidInputError, match="'documents'.*'text'"):
        rerank_table([{"query": QUERY, "docs": []}], "huggingface:unused")
    with pytest.raises(InvalidInputError, match="shape must be one of"):
        rerank_table([{"query": QUERY, "documents": []}], "huggingface:unused", shape="wide")  # type: ignore[arg-type]
