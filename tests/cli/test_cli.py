"""The ``rerank-layer`` command: demo, rerank (stdin/file, table/JSON) and eval, through ``main``."""

from __future__ import annotations

import io
import json

import pytest

from core.cli import main
from core.evaluation import read_run

DOCS = [
    {"id": "b", "text": "Bananas are a yellow fruit rich in potassium."},
    {"id": "p", "text": "Paris is the capital and largest city of France."},
    {"id": "g", "text": "Berlin is the capital of Germany."},
]
QUERY = "What is the capital of France?"


def test_demo_prints_first_stage_and_reranked_tables(capsys):
    assert main(["demo", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    first, reranked = out.split("Reranked")
    assert "Photosynthesis" in first
    rows = [line for line in reranked.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2
    assert rows[0].split()[1] in ("d3", "d5")  # the two photosynthesis documents lead


def test_rerank_reads_json_lines_from_stdin_and_prints_json(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(json.dumps(d) for d in DOCS)))
    assert main(["rerank", "-q", QUERY, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["id"] == "p"
    assert {row["id"] for row in rows} == {"b", "p", "g"}
    scores = [row["rerank_score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores) and "rerank_raw_score" in rows[0]


def test_rerank_reads_plain_lines_from_a_file_and_prints_a_table(tmp_path, capsys):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(d["text"] for d in DOCS) + "\n")
    assert main(["rerank", str(path), "--query", QUERY, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "score", "text"]
    assert len(lines) == 4
    assert lines[2].split()[0] == "1" and "Paris" in lines[2]


def test_rerank_with_provider_flags(tiny_cross_encoder, tmp_path, capsys):
    path = tmp_path / "docs.json"
    path.write_text(json.dumps([d["text"] for d in DOCS]))
    argv = ["rerank", str(path), "-q", QUERY, "--format", "json", "--provider", "huggingface"]
    assert main([*argv, "--model", str(tiny_cross_encoder), "--set", "batch_size=2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["text"] for row in rows) == sorted(d["text"] for d in DOCS)
    assert all(isinstance(row["rerank_raw_score"], float) for row in rows)


def test_rerank_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    path = tmp_path / "docs.json"
    path.write_text("[1, 2]")
    assert main(["rerank", str(path), "-q", QUERY]) == 2
    assert "documents[0]" in capsys.readouterr().err
    assert main(["rerank", str(tmp_path / "missing.txt"), "-q", QUERY]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_eval_prints_a_table_and_writes_json_and_runs(tmp_path, capsys, beir_dir):
    data = beir_dir
    out = tmp_path / "out"
    argv = ["eval", str(data), "--top-n", "4", "--no-progress", "-o", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "toy: 3 queries; top-4 of bm25" in captured.out
    assert "nDCG@10" in captured.out and "latency per query: p50" in captured.out
    assert "report.json" in captured.err
    report = json.loads((out / "report.json").read_text())
    assert report["queries"] == 3 and report["reranker"]["provider"] == "sentence_transformer"
    assert report["metrics"]["after"]["ndcg@10"] > 0.9
    assert set(report["per_query"]) == {"q1", "q2", "q3"}
    reranked = read_run(out / "reranked.run")
    assert reranked["q1"][0][0] == "d1"
    assert len(read_run(out / "first_stage.run")["q1"]) == 6


def test_eval_with_a_run_file_spec_file_and_json_summary(tmp_path, capsys, beir_dir):
    data = beir_dir
    run = tmp_path / "first.run"
    run.write_text("q2 Q0 d6 1 2.0 bm25\nq2 Q0 d5 2 1.0 bm25\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("provider: sentence_transformer\nconfig:\n  model: embedded\n  batch_size: 4\n")
    argv = ["eval", str(data), "--run", str(run), "--reranker", str(spec), "--json", "--no-progress"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["queries"] == 1 and summary["first_stage"] == str(run)
    assert summary["metrics"]["before"]["mrr@10"] == 0.5
    assert summary["metrics"]["after"]["mrr@10"] == 1.0
    assert summary["reranker"]["config"]["batch_size"] == 4
    assert "per_query" not in summary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "{tmp}"], "corpus.jsonl is missing"),
        (["eval", "{data}", "--provider", "nope"], "unknown reranker provider 'nope'"),
        (["eval", "{data}", "--set", "no_such_field=1"], "no_such_field"),
    ],
)
def test_eval_errors_exit_2_with_a_message(tmp_path, capsys, argv, message, beir_dir):
    data = beir_dir
    args = [a.format(tmp=tmp_path / "empty", data=data) for a in argv]
    assert main([*args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_reranker_option_takes_a_string_spec(tiny_cross_encoder, tmp_path, capsys):
    path = tmp_path / "docs.json"
    path.write_text(json.dumps([d["text"] for d in DOCS]))
    argv = ["rerank", str(path), "-q", QUERY, "--format", "json", "--reranker", f"HF:{tiny_cross_encoder}"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["text"] for row in rows) == sorted(d["text"] for d in DOCS)
    assert all(isinstance(row["rerank_raw_score"], float) for row in rows)
