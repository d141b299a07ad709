"""``rerank-layer batch`` in process: every format, shards and resume, manifests, secrets, missing Ray."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from core.batch import run_batch
from core.batch.formats import read_jsonl, write_jsonl
from core.cli import main
from core.errors import ConfigError, MissingDependencyError
from core.evaluation import read_run
from tests.batch.conftest import flat_rows, grouped_rows, tiny_spec
from tests.support.fake_api import Fault
from tests.support.hosted_support import FAST

TOY = Path(__file__).resolve().parents[2] / "notebooks" / "data" / "toy"


def cli(*args: str) -> int:
    return main(["batch", *args, "--no-progress"])


def tiny_args(model: Path) -> list[str]:
    return ["--reranker", f"huggingface:{model}", "--set", 'dtype="float32"']


def test_jsonl_flat_rows_through_the_command(tiny_cross_encoder, tmp_path, capsys):
    source = tmp_path / "pairs.jsonl"
    write_jsonl(source, flat_rows())
    assert cli(str(source), "-o", str(tmp_path / "out.jsonl"), *tiny_args(tiny_cross_encoder)) == 0
    out = read_jsonl(tmp_path / "out.jsonl")
    assert len(out) == len(flat_rows()) and {r["doc_id"] for r in out} == {r["doc_id"] for r in flat_rows()}
    assert "15 rows, 14 pairs" in capsys.readouterr().err
    q2 = [r for r in out if r["query_id"] == "q2"]
    assert [r["rank"] for r in q2] == list(range(1, 8))
    assert [r["rerank_score"] for r in q2] == sorted((r["rerank_score"] for r in q2), reverse=True)


def test_parquet_grouped_rows_in_and_out(tiny_cross_encoder, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "queries.parquet"
    pq.write_table(pa.Table.from_pylist(grouped_rows()), source)
    assert cli(str(source), "-o", str(tmp_path / "out.parquet"), *tiny_args(tiny_cross_encoder)) == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("rerank_score").type == pa.list_(pa.float64())
    assert table.schema.field("rank").type == pa.list_(pa.int64())
    rows = table.to_pylist()
    assert [r["tag"] for r in rows] == [1, 2, 3]
    assert rows[0]["rank"] == list(range(1, 8)) and rows[2]["rerank_error"] == "documents must not be empty"
    assert rows[0]["rerank_score"] == sorted(rows[0]["rerank_score"], reverse=True)


def test_beir_folder_and_run_to_a_trec_run(tiny_cross_encoder, tmp_path):
    docs = [
        json.loads(line)["_id"] for line in (TOY / "corpus.jsonl").read_text().splitlines() if line.strip()
    ]
    queries = [json.loads(line)["_id"] for line in (TOY / "queries.jsonl").read_text().splitlines() if line]
    first = tmp_path / "first.run"
    first.write_text(
        "".join(f"{q} Q0 {d} {r} {10 - r} bm25\n" for q in queries[:2] for r, d in enumerate(docs[:5], 1))
        + f"{queries[0]} Q0 missing-doc 6 1 bm25\n"
    )
    out = tmp_path / "reranked.run"
    assert cli(str(TOY), "--run", str(first), "-o", str(out), *tiny_args(tiny_cross_encoder)) == 0
    run = read_run(out)
    assert set(run) == set(queries[:2])
    assert {d for d, _ in run[queries[1]]} == set(docs[:5])
    assert [d for d, _ in run[queries[0]]][-1] == "missing-doc"  # a bad row: kept, last
    flat = tmp_path / "reranked.jsonl"
    assert cli(str(TOY), "--run", str(first), "-o", str(flat), *tiny_args(tiny_cross_encoder)) == 0
    rows = read_jsonl(flat)
    assert rows[5]["doc_id"] == "missing-doc" and rows[5]["rerank_error"] == "text is missing"
    assert {r["first_stage_rank"] for r in rows[:5]} == set(range(1, 6))


def test_shards_resume_and_never_mix(tiny_cross_encoder, tmp_path):
    source, output = tmp_path / "pairs.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, flat_rows() + [dict(r, query_id="q3") for r in flat_rows()[8:]])
    spec = tiny_spec(tiny_cross_encoder)
    first = run_batch(source, output, spec, shard_pairs=7, progress=False)
    shards = sorted((tmp_path / "out.jsonl.shards").glob("shard-*.jsonl"))
    assert first.shards == len(shards) == 3 and first.skipped == 0 and first.bad_rows == 1
    complete = output.read_text()
    stamps = {p.name: p.stat().st_mtime_ns for p in shards}
    shards[1].unlink()
    second = run_batch(source, output, spec, shard_pairs=7, progress=False)
    assert second.skipped == 2
    assert {p.name: p.stat().st_mtime_ns for p in shards if p != shards[1]} == {
        k: v for k, v in stamps.items() if k != shards[1].name
    }
    assert output.read_text() == complete
    with pytest.raises(ConfigError, match=r"another run .*\['spec'\]"):
        run_batch(source, output, tiny_spec(tiny_cross_encoder, max_length=16), shard_pairs=7, progress=False)
    write_jsonl(source, flat_rows())
    with pytest.raises(ConfigError, match=r"\['input', 'pairs', 'rows', 'shards'\]"):
        run_batch(source, output, spec, shard_pairs=7, progress=False)
    again = run_batch(source, output, spec, shard_pairs=7, restart=True, progress=False)
    assert again.skipped == 0 and len(read_jsonl(output)) == len(flat_rows())


def test_keys_stay_out_of_manifest_output_and_logs(server, tmp_path, caplog, capsys):
    secret = "sk-batch-secret-0042"
    server.script("cohere", Fault(status=401))
    source, output = tmp_path / "pairs.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, flat_rows()[:3])
    spec = {"provider": "cohere", "config": {"api_key": secret, "base_url": server.url, **FAST}}
    with caplog.at_level(logging.DEBUG):
        summary = run_batch(source, output, spec, progress=True)
    assert summary.failed_queries == 1
    assert server.requests_for("cohere")[0].headers["authorization"] == f"Bearer {secret}"  # the key was used
    manifest = (tmp_path / "out.jsonl.shards" / "manifest.json").read_text()
    assert json.loads(manifest)["spec"]["config"]["api_key"] == "**********"
    seen = manifest + output.read_text() + caplog.text + "".join(capsys.readouterr())
    assert "401" in output.read_text() and secret not in seen


def test_ray_engine_without_ray_names_the_extra(tmp_path, monkeypatch, tiny_cross_encoder):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the ray extra were not installed
    source = tmp_path / "pairs.jsonl"
    write_jsonl(source, flat_rows())
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[ray\]"):
        run_batch(source, tmp_path / "out.jsonl", tiny_spec(tiny_cross_encoder), engine="ray")
    assert not (tmp_path / "out.jsonl.shards").exists()
    assert cli(str(source), "-o", str(tmp_path / "out.jsonl"), "--engine", "ray") == 1  # runtime error


def test_bad_paths_are_clear_errors(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("a,b\n")
    assert cli(str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.jsonl")) == 2
    assert "expected a .jsonl or .parquet file" in capsys.readouterr().err
    write_jsonl(tmp_path / "in.jsonl", flat_rows())
    assert cli(str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.csv")) == 2
    assert "expected a .jsonl, .parquet, .run or .trec file name" in capsys.readouterr().err
    assert cli(str(TOY), "-o", str(tmp_path / "o.jsonl")) == 2
    assert "needs a first-stage run (--run)" in capsys.readouterr().err


def test_exit_status_3_when_queries_kept_their_first_stage_order(server, tmp_path, capsys):
    server.script("cohere", Fault(status=500), Fault(status=500))
    source, output = tmp_path / "pairs.jsonl", tmp_path / "out.jsonl"
    write_jsonl(source, flat_rows())
    settings = ["--set", 'api_key="k"', "--set", f'base_url="{server.url}"', "--set", "max_retries=0"]
    assert cli(str(source), "-o", str(output), "--provider", "cohere", *settings) == 3
    assert "2 queries" in capsys.readouterr().err
    assert len(read_jsonl(output)) == len(flat_rows())
