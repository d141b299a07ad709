"""The Ray engine on a local Ray: the same scores as in process, one model load per actor, resume, secrets.

Three Ray Data executions in all (each starts its actors): the batch command's ``ray`` engine, and
``rerank_dataset`` on grouped rows and on flat rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.batch import rerank_dataset, rerank_table, run_batch
from core.batch.formats import read_jsonl, write_jsonl
from core.batch.ray_engine import shippable_spec
from core.errors import ConfigError
from tests.batch.conftest import RAY_WORKER_KEY, flat_rows, grouped_rows, tiny_spec
from tests.support.fake_api import Fault
from tests.support.hosted_support import FAST


def same_rows(got: list[dict], want: list[dict]) -> None:
    """Equal rows, scores within 1e-6 (float32 sums differ with the thread count)."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        for key in ("rerank_score", "rerank_raw_score"):
            x, y = a.pop(key), b.pop(key)
            if isinstance(x, list):
                assert x == [pytest.approx(v, abs=1e-6) if v is not None else None for v in y]
            else:
                assert x == (pytest.approx(y, abs=1e-6) if y is not None else None)
        assert a == b


def test_ray_engine_resumes_in_process_shards_with_the_same_scores(ray_cluster, tiny_cross_encoder, tmp_path):
    source, output, stats = tmp_path / "pairs.jsonl", tmp_path / "out.jsonl", tmp_path / "stats"
    rows = flat_rows() + [dict(r, query_id=f"q{n}") for n in (3, 4) for r in flat_rows()[8:]]
    write_jsonl(source, rows)
    spec = tiny_spec(tiny_cross_encoder)
    local = run_batch(source, output, spec, shard_pairs=7, progress=False)
    assert local.shards == 4
    expected = read_jsonl(output)
    shards = sorted((tmp_path / "out.jsonl.shards").glob("shard-*.jsonl"))
    kept = shards[0].stat().st_mtime_ns
    for shard in shards[1:]:
        shard.unlink()

    summary = run_batch(
        source,
        output,
        spec,
        engine="ray",
        workers=2,
        shard_pairs=7,
        batch_pairs=7,
        stats_dir=stats,
        progress=False,
    )
    assert summary.skipped == 1 and shards[0].stat().st_mtime_ns == kept
    same_rows(read_jsonl(output), expected)  # the bad row included, with its error and rank
    actors = [json.loads(p.read_text()) for p in stats.glob("actor-*.json")]
    # an actor still starting when the work ran out is cut: one or two, each loaded once
    assert 1 <= len(actors) <= 2 and all(a["loads"] == 1 for a in actors)
    assert sum(a["batches"] for a in actors) == 3 and sum(a["pairs"] for a in actors) == 21
    assert max(a["batches"] for a in actors) >= 2  # one load served several batches

    again = run_batch(source, output, spec, engine="ray", shard_pairs=7, progress=False)
    assert again.skipped == 4  # nothing left to do: no Ray execution at all


def test_rerank_dataset_grouped_rows_match_in_process(ray_cluster, tiny_cross_encoder):
    ray = ray_cluster["ray"]
    spec = tiny_spec(tiny_cross_encoder)
    rows = [dict(r, doc_ids=r.get("doc_ids")) for r in grouped_rows()]  # one Arrow schema for all rows
    out = rerank_dataset(ray.data.from_items(rows), spec, workers=1, batch_pairs=7).take_all()
    out.sort(key=lambda r: r["tag"])
    same_rows(out, rerank_table(rows, spec))


def test_rerank_dataset_failing_hosted_provider_keeps_first_stage_order(ray_cluster, server):
    server.script("cohere", *[Fault(status=503)] * 4)
    spec = {"provider": "cohere", "config": {"base_url": server.url, **FAST, "max_retries": 0}}
    rows = [dict(r, text=None) if r["doc_id"] == "q1-bad" else r for r in flat_rows()]  # Arrow: one type
    out = rerank_dataset(ray_cluster["ray"].data.from_items(rows), spec, workers=1).take_all()
    assert len(out) == len(rows)
    assert [r["rerank_error"] for r in out if r["doc_id"] == "q1-bad"] == ["text is missing"]
    for qid in ("q1", "q2"):
        rows = sorted((r for r in out if r["query_id"] == qid), key=lambda r: r["rank"])
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)  # first stage
        assert all(
            r["rerank_score"] is None and "503" in r["rerank_error"] for r in rows if r["doc_id"] != "q1-bad"
        )
    requests = server.requests_for("cohere")
    assert len(requests) == 2
    assert {r.headers["authorization"] for r in requests} == {f"Bearer {RAY_WORKER_KEY}"}  # from the node env
    logs = [p for p in Path(ray_cluster["logs"]).rglob("*") if p.is_file() and "sockets" not in p.parts]
    assert logs and not [p for p in logs if RAY_WORKER_KEY.encode() in p.read_bytes()]


def test_a_key_in_the_spec_is_never_shipped_to_a_running_cluster(ray_cluster):
    with pytest.raises(ConfigError, match="CO_API_KEY"):
        shippable_spec({"provider": "cohere", "config": {"api_key": "sk-in-clear"}})
    shipped, refs = shippable_spec({"provider": "cohere", "config": {"model": "rerank-v3.5"}})
    assert shipped == {"provider": "cohere", "config": {"model": "rerank-v3.5"}} and refs == []
