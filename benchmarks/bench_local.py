"""Local cross-encoder reranking: rerank-layer against the peers' fastest settings, interleaved.

Run from the repository root, under the benchmark lock:

    bash benchmarks/peers/setup_peers.sh                                 # once: the peers' own venvs
    flock /work/bench.lock .venv/bin/python benchmarks/bench_local.py    # full run
    flock /work/bench.lock .venv/bin/python benchmarks/bench_local.py --quick

Every system runs in its own long-lived worker process (``benchmarks/peers/worker.py``; peers that
need other package versions from their venv under ``/work/bench-venvs``), all fed the same inputs,
round-robin with the order rotated each round. Prints, at each candidate count, pairs/s at the
median and at the fastest run and each system's ratio to the best peer; then each system's top-10
agreement with float32 and NDCG@10 (benchmark cross-encoder, DL19 BM25 top-100), peak memory of
each system alone in a fresh process, the layer's own overhead, and NDCG@10 of the real
all-MiniLM-L6-v2 (bi-encoder) per precision. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import numpy as np  # noqa: E402

from benchmarks import local_inputs  # noqa: E402
from core import create_reranker  # noqa: E402

WORKER = ROOT / "benchmarks" / "peers" / "worker.py"
VENVS = Path(os.environ.get("BENCH_VENVS", "/work/bench-venvs"))
PEER_MODELS = local_inputs.build_model().parent / "peers"

#: System name -> the venv it runs in ("main": this interpreter). Ours first; see worker.py.
SYSTEMS: dict[str, str] = {
    "rerank-layer fastest": "main",
    "rerank-layer default": "main",
    "rerank-layer torch bf16": "main",
    "rerank-layer onnx int8": "main",
    "rerank-layer float32": "main",
    "ST ONNX int8 (avx512_vnni)": "st-onnx",
    "ST torch bf16": "main",
    "fastembed int8 (512 tokens)": "fastembed",
    "ST torch float32": "main",
    "LangChain CrossEncoderReranker": "main",
    "LlamaIndex SentenceTransformerRerank": "main",
    "ST ONNX float32": "st-onnx",
    "fastembed float32 (512 tokens)": "fastembed",
}
#: Left out unless named with --systems: float32 ONNX peers, far behind their int8 (see the README).
OPTIONAL = ("ST ONNX float32", "fastembed float32 (512 tokens)")
#: What each of our names runs (the worker's OURS), for the report.
OURS_LABEL = {
    "rerank-layer fastest": "backend=openvino dtype=int8 batch_size=16 (extra: openvino)",
    "rerank-layer default": "no option, local extra (= auto: openvino int8 here, batches capped at 16)",
    "rerank-layer torch bf16": "backend=torch (auto dtype: bf16 here), the default without OpenVINO",
    "rerank-layer onnx int8": "backend=onnx dtype=int8 batch_size=16 (extra: onnx)",
    "rerank-layer float32": "dtype=float32 (torch): the reference",
}
REFERENCE = "rerank-layer float32"
#: Peers that run the same PyTorch float32 forward as the reference: their rankings are float32's
#: (top-10 10/10), so the accuracy pass skips them unless --accuracy-all.
SAME_AS_REFERENCE = (
    "ST torch float32",
    "LangChain CrossEncoderReranker",
    "LlamaIndex SentenceTransformerRerank",
)


def is_ours(name: str) -> bool:
    return name.startswith("rerank-layer")


# --- workers ---------------------------------------------------------------------------------------
class Worker:
    """One system in its own process (see worker.py for the protocol)."""

    def __init__(self, name: str, model: Path, env_overrides: dict[str, str] | None = None) -> None:
        venv = SYSTEMS.get(name, "main")
        python = sys.executable if venv == "main" else str(VENVS / venv / "bin" / "python")
        env = dict(os.environ) | (env_overrides or {})
        if venv != "main":
            env.pop("PYTHONPATH", None)
        self.name = name
        self.process = subprocess.Popen(
            [python, str(WORKER), name, str(model), str(PEER_MODELS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.ready = self._read()

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: the worker exited (rc {self.process.wait()})")
        return json.loads(line)

    def ask(self, **request: object) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def rank(self, query: str, texts: list[str]) -> float:
        return float(self.ask(op="rank", query=query, texts=texts)["seconds"])

    def scores(self, query: str, texts: list[str]) -> np.ndarray:
        return np.asarray(self.ask(op="rank", query=query, texts=texts, scores=True)["scores"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.ask_quit()
        self.process.wait(timeout=60)

    def ask_quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.process.stdin.close()


def available(names: list[str]) -> list[str]:
    """The systems whose venv exists (the peers' venvs come from setup_peers.sh)."""
    out = []
    for name in names:
        venv = SYSTEMS[name]
        if venv == "main" or (VENVS / venv / ".ready").is_file():
            out.append(name)
        else:
            print(f"  skipped {name}: no venv {VENVS / venv} (run benchmarks/peers/setup_peers.sh)")
    return out


def prepare_peer_models(model: Path) -> None:
    """The peers' own ONNX export and int8 file (made once, by sentence-transformers' tools)."""
    python = VENVS / "st-onnx" / "bin" / "python"
    if python.is_file():
        script = ROOT / "benchmarks" / "peers" / "prepare_models.py"
        subprocess.run([str(python), str(script), str(model), str(PEER_MODELS)], check=True)


def start_workers(names: list[str], model: Path) -> dict[str, Worker]:
    workers = {}
    for name in names:
        try:
            workers[name] = Worker(name, model)
        except (RuntimeError, json.JSONDecodeError) as exc:
            print(f"  skipped {name}: {exc}")
            continue
        workers[name].rank(local_inputs.benchmark_query(), local_inputs.passages(4))  # warm-up
    return workers


# --- speed -----------------------------------------------------------------------------------------
@dataclass
class Measure:
    seconds: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def run_speed(
    workers: dict[str, Worker], sizes: list[int], repeats: dict[int, int], pool: list[str]
) -> dict[int, dict[str, Measure]]:
    """Round-robin over systems, repetition by repetition, the order rotated each round."""
    query = local_inputs.benchmark_query()
    results: dict[int, dict[str, Measure]] = {}
    names = list(workers)
    for size in sizes:
        texts = pool[:size]
        results[size] = {name: Measure() for name in names}
        for rep in range(repeats[size]):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                time.sleep(0.2)  # let the previous system's threads go idle
                results[size][name].seconds.append(workers[name].rank(query, texts))
        print(f"  {size} candidates done (load average {os.getloadavg()[0]:.1f})", flush=True)
    return results


def best_peer(by_name: dict[str, Measure], size: int, attr: str) -> tuple[str, float]:
    rates = {n: size / getattr(m, attr) for n, m in by_name.items() if not is_ours(n)}
    name = max(rates, key=lambda n: rates[n]) if rates else ""
    return name, rates.get(name, float("nan"))


def print_speed(results: dict[int, dict[str, Measure]]) -> None:
    for size, by_name in results.items():
        peer, rate_peer = best_peer(by_name, size, "p50")
        peer_best, rate_peer_best = best_peer(by_name, size, "best")
        runs = len(next(iter(by_name.values())).seconds)
        print(f"\n{size} candidates, {runs} runs each; best peer: {peer} (median), {peer_best} (fastest run)")
        print(f"  {'system':40} {'median/s':>9} {'x best':>7} {'fastest/s':>10} {'x best':>7}")
        for name, m in sorted(by_name.items(), key=lambda item: item[1].p50):
            rate, top = size / m.p50, size / m.best
            print(f"  {name:40} {rate:9.1f} {rate / rate_peer:7.2f} {top:10.1f} {top / rate_peer_best:7.2f}")


# --- accuracy --------------------------------------------------------------------------------------
def evaluation_queries(limit: int | None) -> list[tuple[str, list[str]]]:
    """DL19 queries with their BM25 top-100, without the last ones (they calibrated the head)."""
    candidates = list(local_inputs.bm25_candidates(100).items())[: -local_inputs.CALIBRATION_QUERIES]
    return candidates[:limit] if limit else candidates


def run_accuracy(workers: dict[str, Worker], limit: int | None) -> dict[str, dict[str, float]]:
    """Per system: top-10 agreement with float32 (mean, min), Spearman and NDCG@10 (benchmark model)."""
    from core.evaluation.beir import read_qrels
    from core.evaluation.metrics import evaluate_run

    docs, qs = local_inputs.corpus(), local_inputs.queries()
    qrels = read_qrels(local_inputs.DATA / "qrels" / "test.tsv")
    queries = evaluation_queries(limit)
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name, worker in workers.items():
        scores[name] = {qid: worker.scores(qs[qid], [docs[i] for i in ids]) for qid, ids in queries}
    out: dict[str, dict[str, float]] = {}
    for name, by_query in scores.items():
        agreement, spearman = [], []
        for qid, _ in queries:
            ref, own = scores[REFERENCE][qid], by_query[qid]
            agreement.append(len(set(np.argsort(-ref)[:10]) & set(np.argsort(-own)[:10])))
            spearman.append(
                float(np.corrcoef(np.argsort(np.argsort(ref)), np.argsort(np.argsort(own)))[0, 1])
            )
        run = {  # evaluate_run reads each list in its order: best first
            qid: sorted(zip(ids, by_query[qid].tolist(), strict=True), key=lambda pair: -pair[1])
            for qid, ids in queries
        }
        per_query = evaluate_run(qrels, run)
        out[name] = {
            "agreement_mean": statistics.mean(agreement),
            "agreement_min": min(agreement),
            "spearman": statistics.mean(spearman),
            "ndcg@10": statistics.mean(m["ndcg@10"] for m in per_query.values()),
        }
    return out


def ndcg_by_precision(max_queries: int | None) -> dict[str, float]:
    """NDCG@10 of BM25 top-100 reranked by the packaged all-MiniLM-L6-v2 (bi-encoder) per precision."""
    from core.evaluation import evaluate

    configs = {
        "float32 (torch)": {"dtype": "float32"},
        "default (auto: bf16 here)": {},
        "onnx int8": {"backend": "onnx", "dtype": "int8"},
        "openvino int8": {"backend": "openvino", "dtype": "int8"},
    }
    out = {}
    for name, config in configs.items():
        spec = {"provider": "sentence_transformer", "config": {"model": "embedded", **config}}
        report = evaluate(
            local_inputs.DATA,
            spec,
            run=local_inputs.DATA / "bm25_top100.run",
            top_n=100,
            max_queries=max_queries,
            progress=False,
        )
        out[name] = report.metrics["after"]["ndcg@10"]
        out.setdefault("BM25 (before)", report.metrics["before"]["ndcg@10"])
    return out


# --- memory and overhead ---------------------------------------------------------------------------
def run_memory(names: list[str], model: Path, size: int) -> dict[str, dict[str, float]]:
    """Each system alone in a fresh process: peak RSS (VmHWM) after loading and one ``size`` call."""
    query, pool = local_inputs.benchmark_query(), local_inputs.passages(size)
    out = {}
    for name in names:
        worker = Worker(name, model)
        worker.rank(query, pool[:4])
        worker.rank(query, pool)
        out[name] = {"loaded_mb": worker.ready["rss_mb"], **worker.ask(op="memory")}
        worker.close()
    return out


def timed(function: Callable, spent: list[float]) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    return wrapper


def overhead_shares(model: Path, pool: list[str], repeats: int) -> dict[str, tuple[float, float]]:
    """Per configuration: share of the call outside the model, and the tokeniser's part of it.

    The model is timed where the runtime enters it: OpenVINO's ``run_batches`` (the padding of the
    next batch overlaps the running ones and counts inside), else the forward of each batch.
    """
    from benchmarks.peers.worker import OURS
    from core.local.cross_encoder import load_cross_encoder

    query, docs, out = local_inputs.benchmark_query(), [{"text": t} for t in pool[:100]], {}
    for name in ("rerank-layer fastest", "rerank-layer default"):
        reranker = create_reranker({"provider": "huggingface", "config": {"model": str(model), **OURS[name]}})
        runtime = load_cross_encoder(reranker.config)
        reranker.rerank(query, docs[:4])
        forward, tokenize, original = [0.0], [0.0], runtime.forward
        streams = hasattr(original, "run_batches")
        if streams:  # instance attributes shadow the methods until deleted
            original.run_batches = timed(original.run_batches, forward)
        else:
            runtime.forward = timed(original, forward)
        runtime.encode_pairs = timed(runtime.encode_pairs, tokenize)
        try:
            outside, tokens = [], []
            for _ in range(repeats):
                forward[0] = tokenize[0] = 0.0
                start = time.perf_counter()
                reranker.rerank(query, docs)
                total = time.perf_counter() - start
                outside.append((total - forward[0]) / total)
                tokens.append(tokenize[0] / total)
        finally:
            if streams:
                del original.run_batches
            runtime.forward = original
            del runtime.encode_pairs
        out[name] = (statistics.median(outside), statistics.median(tokens))
    return out


# --- main ------------------------------------------------------------------------------------------
def print_table(
    results: dict[int, dict[str, Measure]],
    accuracy: dict[str, dict[str, float]],
    memory: dict[str, dict[str, float]],
) -> None:
    """One line per system: pairs/s and ratio to the best peer per size, accuracy, peak memory."""
    sizes = list(results)
    head = "".join(f" {f'@{s}/s':>8} {'x peer':>7}" for s in sizes)
    print(f"\n  {'system':40}{head} {'top10 mean/min':>15} {'NDCG@10':>8} {'peak MB':>8}")
    for name in results[sizes[0]]:
        cells = ""
        for size in sizes:
            rate = size / results[size][name].p50
            cells += f" {rate:8.1f} {rate / best_peer(results[size], size, 'p50')[1]:7.2f}"
        acc = accuracy.get(name)
        agree = f"{acc['agreement_mean']:.2f}/{acc['agreement_min']:.0f}" if acc else "-"
        ndcg = f"{acc['ndcg@10']:.4f}" if acc else "-"
        peak = f"{memory[name]['peak_rss_mb']:.0f}" if name in memory else "-"
        print(f"  {name:40}{cells} {agree:>15} {ndcg:>8} {peak:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and queries")
    parser.add_argument("--sizes", default="100,500", help="candidate counts, comma-separated")
    parser.add_argument("--systems", help="comma-separated subset of the systems (default: all)")
    parser.add_argument("--repeats", type=int, help="runs per size for every size")
    parser.add_argument("--skip-accuracy", action="store_true", help="skip agreement and NDCG")
    parser.add_argument("--skip-memory", action="store_true", help="skip the fresh-process memory runs")
    parser.add_argument(
        "--queries", type=int, default=20, help="evaluation queries for accuracy (at most 35)"
    )
    parser.add_argument(
        "--bi-encoder", action="store_true", help="also NDCG@10 of all-MiniLM-L6-v2 per precision"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--accuracy-all", action="store_true", help="also score the float32 PyTorch peers")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    repeats = {
        s: args.repeats or ((3 if s <= 100 else 2) if args.quick else (4 if s <= 100 else 3)) for s in sizes
    }
    chosen = args.systems.split(",") if args.systems else [n for n in SYSTEMS if n not in OPTIONAL]
    names = available(chosen)

    from core.local.precision import cpu_flags, cpu_has_native_bf16

    features = sorted(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16"})
    print(f"CPU features: {features}; native bf16: {cpu_has_native_bf16()}; load average {os.getloadavg()}")
    model = local_inputs.build_model()
    prepare_peer_models(model)
    pool = local_inputs.passages(max(sizes))
    print(f"model {model}; query {local_inputs.benchmark_query()!r}; passages of 100-150 words")
    for name in names:
        print(f"  {name:40} {OURS_LABEL.get(name, 'venv: ' + SYSTEMS[name])}")

    print("\nloading and warming up (each system in its own worker process)")
    workers = start_workers(names, model)
    report: dict[str, object] = {}
    try:
        print("\nspeed")
        results = run_speed(workers, sizes, repeats, pool)
        print_speed(results)
        accuracy: dict[str, dict[str, float]] = {}
        if not args.skip_accuracy:
            limit = 8 if args.quick else args.queries
            print(f"\naccuracy: {len(evaluation_queries(limit))} DL19 queries, BM25 top-100 each")
            measured = {n: w for n, w in workers.items() if args.accuracy_all or n not in SAME_AS_REFERENCE}
            accuracy = run_accuracy(measured, limit)
            print(f"  {'system':40} {'top-10 vs float32 mean/min':>27} {'Spearman':>9} {'NDCG@10':>8}")
            base = accuracy[REFERENCE]["ndcg@10"] if REFERENCE in accuracy else float("nan")
            for name, acc in accuracy.items():
                print(
                    f"  {name:40} {acc['agreement_mean']:21.2f} / {acc['agreement_min']:.0f}"
                    f" {acc['spearman']:9.4f} {acc['ndcg@10']:8.4f} ({acc['ndcg@10'] - base:+.4f})"
                )
    finally:
        for worker in workers.values():
            worker.close()
    memory: dict[str, dict[str, float]] = {}
    if not args.skip_memory:
        biggest = max(sizes)
        print(f"\nmemory at {biggest} candidates, each system alone in a fresh process")
        memory = run_memory(list(workers), model, biggest)
        for name, m in memory.items():
            print(f"  {name:40} peak RSS {m['peak_rss_mb']:6.0f} MB (after loading {m['loaded_mb']:.0f} MB)")
    print("\nsummary (median pairs/s, ratio to the best peer's median)")
    print_table(results, accuracy, memory)

    print("\nthe layer's own overhead at 100 candidates: share of the call outside the model forward")
    overhead = overhead_shares(model, pool, 3)
    for name, (outside, tokens) in overhead.items():
        print(f"  {name:40} {outside * 100:5.2f} % (tokenisation {tokens * 100:.2f} %)")
    report |= {
        "load_average": os.getloadavg(),
        "speed": {s: {n: m.seconds for n, m in r.items()} for s, r in results.items()},
        "accuracy": accuracy,
        "memory": memory,
        "overhead_share": overhead,
    }
    if args.bi_encoder:
        print("\nNDCG@10, TREC DL19 subset, BM25 top-100 reranked by all-MiniLM-L6-v2 (bi-encoder)")
        ndcg = ndcg_by_precision(10 if args.quick else None)
        for name, value in ndcg.items():
            print(f"  {name:40} {value:.4f}")
        report["bi_encoder_ndcg@10"] = ndcg
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
