"""Batch reranking throughput: the in-process engine and Ray Data against calling the reranker directly.

Run from the repository root, alone on the machine's benchmark lock:

    flock /work/bench.lock .venv/bin/python benchmarks/bench_batch.py               # 20,000 pairs each
    flock /work/bench.lock .venv/bin/python benchmarks/bench_batch.py --pairs 2000  # a quick look

Same model (the benchmark MiniLM-L6 cross-encoder, ``huggingface`` provider, default precision),
same pairs (DL19 queries with their BM25 top-100, cycled) for every system:

- direct: ``reranker.rank(query, texts)`` per query, in a loop (2 threads);
- in-process engine: ``rerank_table`` on the same queries as flat rows (2 threads);
- Ray, 1 actor of 2 CPUs and Ray, 2 actors of 1 CPU: ``rerank_dataset`` on grouped rows.

The pairs are split into rounds; each round runs every system on its share, in turn, so a change
in machine load hits all of them. Ray's pairs/s counts from the first batch an actor starts to the
last one it ends (steady state); start-up (actors spawned, model loaded, first batch begun) is
printed apart, as is each actor's peak memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from benchmarks import local_inputs  # noqa: E402
from core.batch import rerank_table  # noqa: E402
from core.batch.table import build_reranker  # noqa: E402

#: Candidates per query: BM25's top 100.
CANDIDATES = 100

if not local_inputs.DATA.is_dir():  # a git worktree sits one level deeper than the checkout shared/ is beside
    local_inputs.DATA = next(
        (
            p / "shared" / "data" / local_inputs.DATA.name
            for p in Path(__file__).resolve().parents
            if (p / "shared" / "data" / local_inputs.DATA.name).is_dir()
        ),
        local_inputs.DATA,
    )


def groups(total_pairs: int) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(query id, query, [(doc id, text)...]) groups of 100 candidates, cycling the DL19 queries."""
    docs, queries = local_inputs.corpus(), local_inputs.queries()
    # the last CALIBRATION_QUERIES queries calibrated the model's head: left out
    runs = list(local_inputs.bm25_candidates(CANDIDATES).items())[: -local_inputs.CALIBRATION_QUERIES]
    out = []
    for i in range(max(1, total_pairs // CANDIDATES)):
        qid, ids = runs[i % len(runs)]
        out.append((f"{qid}-{i}", queries[qid], [(d, docs[d]) for d in ids]))
    return out


def flat_rows(chunk: list[tuple[str, str, list[tuple[str, str]]]]) -> list[dict]:
    return [
        {"query_id": qid, "doc_id": d, "query": q, "text": t, "first_stage_rank": r}
        for qid, q, cands in chunk
        for r, (d, t) in enumerate(cands, 1)
    ]


def grouped_rows(chunk: list[tuple[str, str, list[tuple[str, str]]]]) -> list[dict]:
    return [
        {"query_id": qid, "query": q, "documents": [t for _, t in c], "doc_ids": [d for d, _ in c]}
        for qid, q, c in chunk
    ]


def ray_run(ray, spec: dict, chunk, workers: int, num_cpus: float, stats: Path) -> dict[str, float]:
    """One Ray Data execution; its steady pairs/s, start-up seconds and the actors' peak memory."""
    from core.batch import rerank_dataset

    for old in stats.glob("*.json"):
        old.unlink()
    pairs = sum(len(c) for _, _, c in chunk)
    start = time.time()
    ds = ray.data.from_items(grouped_rows(chunk))
    out = rerank_dataset(
        ds, spec, workers=workers, num_cpus=num_cpus, docs_per_row=CANDIDATES, stats_dir=stats
    ).take_all()
    end = time.time()
    assert sum(len(r["documents"]) for r in out) == pairs and not any(r["rerank_error"] for r in out)
    actors = [json.loads(p.read_text()) for p in stats.glob("actor-*.json")]
    busy = [a for a in actors if a["first_batch_at"] is not None]
    first = min(a["first_batch_at"] for a in busy)
    last = max(a["last_batch_end_at"] for a in busy)
    return {
        "pairs": pairs,
        "steady_s": last - first,
        "wall_s": end - start,
        "startup_s": first - start,
        "load_s": max(a["load_s"] for a in actors),
        "actors": len(actors),
        "peak_rss_mb": max(a["peak_rss_mb"] for a in actors),
        "loads": sum(a["loads"] for a in actors),
        # share of the actors' steady time spent inside the reranking code (the rest: Ray's own work)
        "utilization": sum(a["busy_s"] for a in busy) / (workers * (last - first)),
    }


def bookkeeping_us_per_pair(chunk: list[tuple[str, str, list[tuple[str, str]]]], repeats: int = 5) -> float:
    """What the in-process engine adds per pair besides the reranker: planning rows and composing outputs."""
    from core.batch.rows import Outcome, compose, plan_rows

    rows = flat_rows(chunk)
    start = time.perf_counter()
    for _ in range(repeats):
        plan = plan_rows(rows, "flat")
        for unit in plan.units:
            n = unit.pairs
            compose(rows, unit, Outcome(list(range(n)), [0.5] * n, [0.1] * n, [None] * n), "flat")
    return (time.perf_counter() - start) / repeats / len(rows) * 1e6


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=20_000, help="pairs per system (default 20,000)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds the pairs are split into (default 4)")
    parser.add_argument("--no-ray", action="store_true", help="only the in-process systems")
    parser.add_argument(
        "--bookkeeping", action="store_true", help="only the engine's own cost per pair (no model), then stop"
    )
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args()

    if args.bookkeeping:
        print(f"engine bookkeeping: {bookkeeping_us_per_pair(groups(args.pairs)):.2f} us per pair")
        return
    model = local_inputs.build_model()
    spec = {"provider": "huggingface", "config": {"model": str(model)}}
    reranker = build_reranker(spec)
    all_groups = groups(args.pairs)
    per_round = max(1, len(all_groups) // args.rounds)
    chunks = [all_groups[i : i + per_round] for i in range(0, len(all_groups), per_round)]
    print(
        f"{sum(len(c) for _, _, c in all_groups)} pairs per system, {len(all_groups)} queries of "
        f"{CANDIDATES}, {len(chunks)} rounds; model {model.name}, huggingface default precision"
    )

    results: dict[str, list[dict[str, float]]] = {"direct": [], "engine": [], "ray-1x2": [], "ray-2x1": []}
    stats = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    session = None
    if not args.no_ray:
        from core.batch import ray_session

        session = ray_session(num_cpus=2)
        ray = session.__enter__()
        ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        for number, chunk in enumerate(chunks, 1):
            pairs = sum(len(c) for _, _, c in chunk)
            rows = flat_rows(chunk)
            seconds = timed(lambda chunk=chunk: [reranker.rank(q, [t for _, t in c]) for _, q, c in chunk])
            results["direct"].append({"pairs": pairs, "steady_s": seconds})
            seconds = timed(lambda rows=rows: rerank_table(rows, reranker))
            results["engine"].append({"pairs": pairs, "steady_s": seconds})
            if session is not None:
                results["ray-1x2"].append(ray_run(ray, spec, chunk, 1, 2.0, stats))
                results["ray-2x1"].append(ray_run(ray, spec, chunk, 2, 1.0, stats))
            done = {
                k: f"{sum(r['pairs'] for r in v) / sum(r['steady_s'] for r in v):.1f}"
                for k, v in results.items()
                if v
            }
            ray_now = {
                k: f"start-up {v[-1]['startup_s']:.1f}s, peak {v[-1]['peak_rss_mb']:.0f} MB/actor, "
                f"in the reranker {v[-1]['utilization']:.1%} of the time"
                for k, v in results.items()
                if v and "startup_s" in v[-1]
            }
            print(f"  round {number}/{len(chunks)}: pairs/s so far {done} {ray_now}", flush=True)
    finally:
        if session is not None:
            session.__exit__(None, None, None)

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    rate = {k: sum(r["pairs"] for r in v) / sum(r["steady_s"] for r in v) for k, v in results.items() if v}
    per_round_ratio = {
        k: statistics.median(
            r["pairs"] / r["steady_s"] / (e["pairs"] / e["steady_s"])
            for r, e in zip(v, results["engine"], strict=True)
        )
        for k, v in results.items()
        if v
    }
    print(f"\n{'system':34} {'pairs/s':>8} {'x engine':>9} {'start-up s':>11} {'peak RSS MB':>12}")
    labels = {
        "direct": "direct reranker.rank loop (2 thr)",
        "engine": "in-process rerank_table (2 thr)",
        "ray-1x2": "Ray, 1 actor x 2 CPUs",
        "ray-2x1": "Ray, 2 actors x 1 CPU",
    }
    for key, value in rate.items():
        runs = results[key]
        startup = (
            f"{statistics.median(r['startup_s'] for r in runs):11.1f}" if "startup_s" in runs[0] else " " * 11
        )
        memory = f"{max(r['peak_rss_mb'] for r in runs):12.0f}" if "peak_rss_mb" in runs[0] else ""
        print(f"{labels[key]:34} {value:8.1f} {per_round_ratio[key]:9.3f} {startup} {memory}")
    print(f"\nin-process engine / direct: {rate['engine'] / rate['direct']:.3f} (target >= 0.95)")
    if "ray-1x2" in rate:
        print(
            f"Ray 1 actor overhead vs in-process: {1 - rate['ray-1x2'] / rate['engine']:.1%} (target <= 15%)"
        )
        print(
            "Ray 2 actors x 1 thread / in-process 2 threads: "
            f"{rate['ray-2x1'] / rate['engine']:.3f} (target >= 0.9)"
        )
        for k in ("ray-1x2", "ray-2x1"):
            share = statistics.median(r["utilization"] for r in results[k])
            print(
                f"{labels[k]}: actors in the reranking code {share:.1%} of their steady time (median round)"
            )
        loads = [r["loads"] / r["actors"] for k in ("ray-1x2", "ray-2x1") for r in results[k]]
        print(
            f"model loads per actor: {sorted(set(loads))}; Ray end-to-end (start-up included) pairs/s: "
            + ", ".join(
                f"{k} {sum(r['pairs'] for r in results[k]) / sum(r['wall_s'] for r in results[k]):.1f}"
                for k in ("ray-1x2", "ray-2x1")
            )
        )


if __name__ == "__main__":
    main()
