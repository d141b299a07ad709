"""Evaluation: BEIR loading, TREC runs, BM25, metrics by hand, reranking runs and reports."""

from __future__ import annotations

import json
import math

import pytest

from core.cli.io import format_ranked_table, read_documents
from core.errors import ConfigError, InvalidInputError
from core.evaluation import (
    bm25_run,
    evaluate,
    evaluate_run,
    load_beir,
    mean_metrics,
    read_qrels,
    read_run,
    rerank_run,
    write_run,
)
from core.evaluation.report import percentile
from core.specs import DEFAULT_SPEC, build_spec, load_spec_file
from tests.support.beir_files import QRELS, write_beir, write_trec_run
from tests.support.toy_rerankers import FailingReranker, ScriptedReranker

LOG2_3 = math.log2(3)


# --- metrics computed by hand -------------------------------------------------------------------
def test_perfect_ranking_scores_one():
    per_query = evaluate_run(QRELS, {"q1": [("d1", 0.9), ("d3", 0.5), ("d2", 0.1)], "q2": [("d5", 1.0)]})
    assert per_query["q1"] == {
        "ndcg@10": 1.0,
        "ndcg@10_exp": 1.0,
        "mrr@10": 1.0,
        "recall@10": 1.0,
        "recall@100": 1.0,
    }
    assert per_query["q2"]["ndcg@10"] == 1.0


def test_swapped_graded_pair_linear_and_exponential_gain():
    # d3 (grade 1) above d1 (grade 2): linear gain uses the grade, exponential 2^grade - 1.
    per_query = evaluate_run(QRELS, {"q1": [("d3", 2.0), ("d1", 1.0)]})
    linear = (1 + 2 / LOG2_3) / (2 + 1 / LOG2_3)
    exponential = (1 + 3 / LOG2_3) / (3 + 1 / LOG2_3)
    assert per_query["q1"]["ndcg@10"] == pytest.approx(linear)
    assert per_query["q1"]["ndcg@10_exp"] == pytest.approx(exponential)
    assert per_query["q1"]["mrr@10"] == 1.0


def test_relevant_at_rank_two_and_eleven():
    eleventh = [(f"x{i}", 1.0) for i in range(10)] + [("d4", 0.5)]
    per_query = evaluate_run(QRELS, {"q2": [("d6", 2.0), ("d5", 1.0)], "q3": eleventh})
    assert per_query["q2"]["ndcg@10"] == pytest.approx(1 / LOG2_3)
    assert per_query["q2"]["mrr@10"] == 0.5
    # Rank 11 is outside every @10 cut but inside @100.
    assert per_query["q3"] == {
        "ndcg@10": 0.0,
        "ndcg@10_exp": 0.0,
        "mrr@10": 0.0,
        "recall@10": 0.0,
        "recall@100": 1.0,
    }
    means = mean_metrics(per_query)
    assert means["mrr@10"] == pytest.approx(0.25)
    assert means["recall@100"] == 1.0


def test_lists_are_evaluated_in_their_order_even_with_tied_scores():
    # trec_eval alone would break the tie by document id; the given order must win.
    assert evaluate_run({"q": {"a": 1}}, {"q": [("a", 1.0), ("z", 1.0)]})["q"]["mrr@10"] == 1.0
    assert evaluate_run({"q": {"a": 1}}, {"q": [("z", 1.0), ("a", 1.0)]})["q"]["mrr@10"] == 0.5


def test_relevance_level_decides_what_counts_for_mrr_and_recall():
    run = {"q1": [("d3", 2.0), ("d1", 1.0)]}
    assert evaluate_run(QRELS, run, relevance_level=1)["q1"]["mrr@10"] == 1.0
    assert evaluate_run(QRELS, run, relevance_level=2)["q1"]["mrr@10"] == 0.5
    with pytest.raises(InvalidInputError, match="relevance_level"):
        evaluate_run(QRELS, run, relevance_level=0)


def test_unjudged_and_empty_queries_are_not_evaluated():
    per_query = evaluate_run(QRELS, {"q1": [("d1", 1.0)], "q4": [("d1", 1.0)], "q2": []})
    assert list(per_query) == ["q1"]
    assert all(math.isnan(v) for v in mean_metrics({}).values())


def test_percentile_interpolates_linearly():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


# --- BEIR folders and TREC runs -----------------------------------------------------------------
def test_load_beir_reads_corpus_queries_and_qrels(beir_dir):
    data = load_beir(beir_dir)
    assert data.name == "toy"
    assert data.document_text("d1") == "Paris Paris is the capital and largest city of France."
    assert data.document_text("d3") == "The Eiffel Tower is a landmark in Paris, France."
    assert data.qrels == QRELS
    assert data.judged_query_ids() == ["q1", "q2", "q3"]


def test_load_beir_errors_name_the_file_and_line(tmp_path, beir_dir):
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl is missing"):
        load_beir(tmp_path)
    with pytest.raises(InvalidInputError, match=r"no qrels/dev\.tsv.*test\.tsv"):
        (beir_dir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n")
        load_beir(beir_dir, split="dev")
    with (beir_dir / "corpus.jsonl").open("a") as out:
        out.write('{"_id": "d7", "title": "no text"}\n')
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl:7: field 'text'"):
        load_beir(beir_dir)


def test_read_qrels_takes_beir_tsv_and_trec_format(tmp_path):
    trec = tmp_path / "qrels.txt"
    trec.write_text("19335 0 1017759 0\n19335 0 1082489 3\n")
    assert read_qrels(trec) == {"19335": {"1017759": 0, "1082489": 3}}
    bad = tmp_path / "bad.tsv"
    bad.write_text("q1\td1\tvery\n")
    with pytest.raises(InvalidInputError, match="bad.tsv:1"):
        read_qrels(bad)


def test_trec_run_round_trip_keeps_order_and_scores(tmp_path):
    run = {"q1": [("d3", 0.7099303305149078), ("d1", 0.5), ("d2", -1.0)], "q2": [("d5", 12.25)]}
    path = write_run(tmp_path / "out" / "x.run", run, tag="t")
    assert path.read_text().splitlines()[0] == "q1 Q0 d3 1 0.7099303305149078 t"
    assert read_run(path) == run


def test_read_run_sorts_by_score_then_rank(tmp_path):
    path = tmp_path / "r.run"
    path.write_text("q Q0 b 2 1.0 t\nq Q0 c 3 5.0 t\nq Q0 a 1 1.0 t\n")
    assert [doc for doc, _ in read_run(path)["q"]] == ["c", "a", "b"]
    path.write_text("q Q0 b two 1.0 t\n")
    with pytest.raises(InvalidInputError, match="r.run:1"):
        read_run(path)


# --- BM25 first stage -----------------------------------------------------------------------
def test_bm25_run_ranks_matching_documents_first_and_breaks_ties_by_id(beir_dir):
    run = bm25_run(load_beir(beir_dir), depth=10)
    assert list(run) == ["q1", "q2", "q3"]
    assert [doc for doc, _ in run["q3"]] == ["d4", "d1", "d2", "d3", "d5", "d6"]
    assert [doc for doc, _ in run["q2"]][:2] == ["d5", "d6"]
    scores = dict(run["q2"])
    assert scores["d5"] > scores["d6"] > 0.0 == scores["d1"]


def test_bm25_indexes_titles_and_respects_depth(tmp_path):
    data = load_beir(write_beir(tmp_path, queries={"s": "snakes"}, qrels={"s": {"d6": 1}}))
    run = bm25_run(data, depth=2)
    assert [doc for doc, _ in run["s"]] == ["d6", "d1"]  # "Snakes" is only in d6's title
    assert run["s"][0][1] > 0.0
    with pytest.raises(InvalidInputError, match="depth"):
        bm25_run(data, depth=0)


# --- reranking a run --------------------------------------------------------------------------
def test_rerank_run_reorders_the_head_and_keeps_the_tail(beir_dir):
    data = load_beir(beir_dir)
    first = {"q1": [("d2", 3.0), ("d3", 2.0), ("d1", 1.0), ("d4", 0.5)]}
    reranker = ScriptedReranker({"largest city of France": 0.9, "Eiffel": 0.8})
    out = rerank_run(reranker, data, first, top_n=3, warmup=False)
    assert [doc for doc, _ in out.run["q1"]] == ["d1", "d3", "d2", "d4"]
    scores = [s for _, s in out.run["q1"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[:3] == [0.9, 0.8, 0.0]
    assert len(reranker.calls) == 1
    assert reranker.calls[0][1][0] == "Berlin Berlin is the capital of Germany and its largest city."
    assert out.documents == 3
    assert list(out.latency_s) == ["q1"]
    assert out.latency_s["q1"] > 0
    assert out.failed == {}


def test_documents_below_the_threshold_go_after_the_reranked_ones(beir_dir):
    data = load_beir(beir_dir)
    first = {"q1": [("d2", 3.0), ("d3", 2.0), ("d1", 1.0)]}
    reranker = ScriptedReranker({"France": 0.9}, score_threshold=0.5)
    ranked = rerank_run(reranker, data, first, top_n=3, warmup=False).run["q1"]
    assert [doc for doc, _ in ranked] == ["d3", "d1", "d2"]
    assert ranked[2][1] < ranked[1][1]


def test_a_failing_reranker_keeps_the_first_stage_and_is_reported(beir_dir):
    data = load_beir(beir_dir)
    first = {"q1": [("d2", 3.0), ("d1", 1.0)], "q3": [("d4", 2.0)]}
    out = rerank_run(FailingReranker(), data, first, warmup=False)
    assert out.run == first
    assert set(out.failed) == {"q1", "q3"}
    assert "provider is down" in out.failed["q1"]


def test_concurrent_reranking_gives_the_same_run(beir_dir):
    data = load_beir(beir_dir)
    first = bm25_run(data)
    scripted = {"France": 0.9, "programming": 0.8, "yellow": 0.7}
    serial = rerank_run(ScriptedReranker(scripted), data, first, top_n=4, warmup=False)
    parallel = rerank_run(ScriptedReranker(scripted), data, first, top_n=4, concurrency=3, warmup=False)
    assert parallel.run == serial.run
    assert set(parallel.latency_s) == {"q1", "q2", "q3"}


def test_rerank_run_checks_its_arguments(beir_dir):
    data = load_beir(beir_dir)
    with pytest.raises(InvalidInputError, match="top_n"):
        rerank_run(ScriptedReranker({}), data, {"q1": [("d1", 1.0)]}, top_n=0)
    with pytest.raises(InvalidInputError, match=r"'nope'.*corpus\.jsonl"):
        rerank_run(ScriptedReranker({}), data, {"q1": [("nope", 1.0)]})
    with pytest.raises(InvalidInputError, match=r"'q9'.*queries\.jsonl"):
        rerank_run(ScriptedReranker({}), data, {"q9": [("d1", 1.0)]})


# --- evaluate(): the whole measurement ------------------------------------------------------------
def test_evaluate_reports_the_lift_of_a_good_reranker(beir_dir, tmp_path):
    # First stage puts every relevant document last; the reranker knows better.
    run_file = write_trec_run(
        tmp_path / "first.run",
        {"q1": ["d2", "d6", "d3", "d1"], "q2": ["d6", "d2", "d5"], "q3": ["d2", "d4"], "q4": ["d1"]},
    )
    reranker = ScriptedReranker(
        {"largest city of France": 0.9, "Eiffel": 0.8, "programming": 0.9, "yellow": 0.9}
    )
    report = evaluate(beir_dir, reranker, run=run_file, progress=False)
    assert report.queries == 3  # q4 has no judgements
    assert report.metrics["after"]["ndcg@10"] == 1.0
    assert report.metrics["before"]["mrr@10"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2) / 3)
    assert report.metrics["delta"]["mrr@10"] == pytest.approx(1 - (1 / 3 + 1 / 3 + 1 / 2) / 3)
    assert report.first_stage == str(run_file)
    summary = report.to_dict()
    assert set(summary) >= {
        "dataset",
        "queries",
        "top_n",
        "gain",
        "metrics",
        "latency_ms",
        "throughput",
        "per_query",
    }
    assert summary["reranker"]["provider"] == "scripted"
    assert summary["per_query"]["q2"]["before"]["mrr@10"] == pytest.approx(1 / 3)
    assert summary["per_query"]["q2"]["after"]["mrr@10"] == 1.0
    assert summary["latency_ms"]["p95"] >= summary["latency_ms"]["p50"] > 0
    assert summary["throughput"]["documents_per_s"] > summary["throughput"]["queries_per_s"] > 0
    assert "linear" in summary["gain"]
    table = report.format_table()
    assert "nDCG@10" in table and "p95" in table and "+0." in table


def test_evaluate_builds_bm25_and_saves_json_and_runs(beir_dir, tmp_path):
    report = evaluate(beir_dir, ScriptedReranker({"France": 1.0}), top_n=2, max_queries=2, progress=False)
    assert report.first_stage.startswith("bm25")
    assert list(report.latency_s) == ["q1", "q2"]
    paths = report.save(tmp_path / "out")
    saved = json.loads(paths["report"].read_text())
    assert saved["queries"] == 2 and saved["top_n"] == 2
    assert saved["metrics"]["after"]["ndcg@10"] == pytest.approx(report.metrics["after"]["ndcg@10"])
    assert read_run(paths["reranked_run"]) == report.reranked_run
    assert [d for d, _ in read_run(paths["first_stage_run"])["q1"]] == [
        d for d, _ in report.first_stage_run["q1"]
    ]


def test_evaluate_refuses_a_run_without_judged_queries(beir_dir, tmp_path):
    run_file = write_trec_run(tmp_path / "r.run", {"q4": ["d1"]})
    with pytest.raises(InvalidInputError, match="no candidates for any judged query"):
        evaluate(beir_dir, ScriptedReranker({}), run=run_file, progress=False)


# --- reranker specs and documents for the CLI -------------------------------------------------------
def test_build_spec_from_flags_and_files(tmp_path):
    assert build_spec() == DEFAULT_SPEC
    spec = build_spec(
        provider="huggingface", model="/m", settings=["batch_size=8", "normalize=false", "device=cpu"]
    )
    assert spec == {
        "provider": "huggingface",
        "config": {"model": "/m", "batch_size": 8, "normalize": False, "device": "cpu"},
    }
    yaml_file = tmp_path / "spec.yaml"
    yaml_file.write_text("reranker:\n  provider: cohere\n  config:\n    model: rerank-v3.5\n    top_k: 5\n")
    assert load_spec_file(yaml_file) == {"provider": "cohere", "config": {"model": "rerank-v3.5", "top_k": 5}}
    json_file = tmp_path / "spec.json"
    json_file.write_text(json.dumps(DEFAULT_SPEC))
    assert build_spec(json_file, settings=["top_k=2"])["config"] == {"model": "embedded", "top_k": 2}
    with pytest.raises(ConfigError, match="not both"):
        build_spec(json_file, provider="cohere")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        build_spec(settings=["top_k"])
    json_file.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec_file(json_file)


def test_read_documents_formats():
    assert read_documents('["a", {"text": "b", "id": 2}]') == ["a", {"text": "b", "id": 2}]
    assert read_documents('{"text": "a"}\n\n"b"\n') == [{"text": "a"}, "b"]
    assert read_documents("plain one\n[not json\n\nplain two\n") == ["plain one", "[not json", "plain two"]
    assert read_documents('{"text": "a"}', "lines") == ['{"text": "a"}']
    with pytest.raises(InvalidInputError, match=r"documents\[1\]"):
        read_documents('["a", 2]')
    with pytest.raises(InvalidInputError, match="line 2"):
        read_documents('{"text": "a"}\nnot json', "jsonl")


def test_ranked_table_shows_rank_score_id_and_text():
    table = format_ranked_table(
        [{"id": "d1", "text": "x " * 60, "rerank_score": 0.91}, {"text": "y", "rerank_score": None}]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["rank", "score", "id", "text"]
    assert lines[2].split()[:3] == ["1", "0.910", "d1"] and lines[2].endswith("...")
    assert lines[3].split() == ["2", "n/a", "y"]
