"""Local cross-encoder reranking: rerank-layer against its peers, in one process, same model and inputs.

Run from the repository root:

    .venv/bin/python benchmarks/bench_local.py            # full run (about 17 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_local.py --quick    # fewer repetitions and queries

Prints, at 20, 100 and 500 candidates: pairs/s, p50 latency, memory, and each configuration's
ratio to the best peer; then the layer's own overhead at 100 candidates, the top-10 agreement of
the fast configurations with float32 on the benchmark cross-encoder, and NDCG@10 on TREC DL19
(BM25 top-100 reranked by the real all-MiniLM-L6-v2, bi-encoder mode) per precision.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in the report
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import numpy as np  # noqa: E402

from benchmarks import local_inputs  # noqa: E402
from core import create_reranker  # noqa: E402

Rank = Callable[[str, list[str]], object]

#: Our configurations: name -> huggingface provider config (on top of the model path).
OURS = {
    "rerank-layer fastest (onnx int8)": {"backend": "onnx", "dtype": "int8", "batch_size": 16},
    "rerank-layer default (auto: bf16 here)": {},
    "rerank-layer float32": {"dtype": "float32"},
}
FASTEST, DEFAULT = list(OURS)[:2]


# --- memory ----------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_of_process_mb() -> float:
    """VmHWM: this process's peak RSS since it started (unlike ru_maxrss, reset by exec)."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def release_memory() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Samples RSS every millisecond; yields a dict that gets ``peak`` and ``before``."""
    out = {"before": rss_mb(), "peak": 0.0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            out["peak"] = max(out["peak"], rss_mb())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        out["peak"] = max(out["peak"], rss_mb())


# --- systems ---------------------------------------------------------------------------------------
def system_builders(model: Path, peers: bool) -> dict[str, Callable[[], Rank]]:
    """How to load each system (ours first), by display name."""
    builders: dict[str, Callable[[], Rank]] = {}
    for name, config in OURS.items():
        builders[name] = lambda config=config: ours(model, config)
    if peers:
        builders |= {
            "sentence-transformers CrossEncoder.predict": lambda: st_cross_encoder(model),
            "LangChain CrossEncoderReranker": lambda: langchain(model),
            "LlamaIndex SentenceTransformerRerank": lambda: llamaindex(model),
            "AnswerDotAI rerankers": lambda: answerdotai(model),
        }
    return builders


def build_systems(model: Path, peers: bool) -> dict[str, Rank]:
    """Every system, loaded and warmed up."""
    systems = {}
    for name, build in system_builders(model, peers).items():
        try:
            rank = build()
        except ImportError as exc:
            print(f"  skipped {name}: {exc}")
            continue
        rank(local_inputs.benchmark_query(), local_inputs.passages(4))  # warm-up
        systems[name] = rank
    return systems


def ours(model: Path, config: dict) -> Rank:
    reranker = create_reranker({"provider": "huggingface", "config": {"model": str(model), **config}})
    reranker.warmup()
    return lambda query, texts: reranker.rerank(query, [{"text": t} for t in texts])


def st_cross_encoder(model: Path) -> Rank:
    from sentence_transformers import CrossEncoder

    encoder = CrossEncoder(str(model), device="cpu")
    return lambda query, texts: encoder.predict([(query, t) for t in texts])


def langchain(model: Path) -> Rank:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder
    from langchain_core.documents import Document

    compressor = CrossEncoderReranker(
        model=HuggingFaceCrossEncoder(model_name=str(model), model_kwargs={"device": "cpu"}), top_n=10
    )
    return lambda query, texts: compressor.compress_documents(
        [Document(page_content=t) for t in texts], query
    )


def llamaindex(model: Path) -> Rank:
    from llama_index.core.postprocessor import SentenceTransformerRerank
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    post = SentenceTransformerRerank(model=str(model), top_n=10, device="cpu")
    return lambda query, texts: post.postprocess_nodes(
        [NodeWithScore(node=TextNode(text=t), score=0.0) for t in texts], query_bundle=QueryBundle(query)
    )


def answerdotai(model: Path) -> Rank:
    from rerankers import Reranker

    ranker = Reranker(str(model), model_type="cross-encoder", device="cpu", verbose=0)
    return lambda query, texts: ranker.rank(query, texts)


# --- timing ----------------------------------------------------------------------------------------
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
    systems: dict[str, Rank], sizes: list[int], repeats: dict[int, int], pool: list[str]
) -> dict[int, dict[str, Measure]]:
    """Round-robin over systems, repetition by repetition, so load changes hit everyone alike."""
    query = local_inputs.benchmark_query()
    results: dict[int, dict[str, Measure]] = {}
    names = list(systems)
    for size in sizes:
        texts = pool[:size]
        results[size] = {name: Measure() for name in names}
        for rep in range(repeats[size]):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                time.sleep(0.2)  # let the previous system's worker threads go idle
                start = time.perf_counter()
                systems[name](query, texts)
                results[size][name].seconds.append(time.perf_counter() - start)
        print(f"  {size} candidates done", flush=True)
    return results


def print_speed(results: dict[int, dict[str, Measure]]) -> None:
    for size, by_name in results.items():
        peers = [m for n, m in by_name.items() if not n.startswith("rerank-layer")]
        best_peer = max((size / m.p50 for m in peers), default=float("nan"))
        best_peer_run = max((size / m.best for m in peers), default=float("nan"))
        runs = len(next(iter(by_name.values())).seconds)
        print(f"\n{size} candidates, {runs} runs each: pairs/s at the p50 latency, and in the fastest run")
        ratio = "x best peer"
        print(f"  {'system':42} {'p50 ms':>8} {'pairs/s':>8} {ratio:>12} {'best run':>9} {ratio:>12}")
        for name, m in by_name.items():
            rate, top = size / m.p50, size / m.best
            print(
                f"  {name:42} {m.p50 * 1000:8.0f} {rate:8.1f} {rate / best_peer:12.2f}"
                f" {top:9.1f} {top / best_peer_run:12.2f}"
            )


def memory_child(name: str, size: int) -> None:
    """In a fresh process: load one system, rerank ``size`` candidates, print memory figures (JSON)."""
    model = local_inputs.build_model()
    pool, query = local_inputs.passages(size), local_inputs.benchmark_query()
    start = rss_mb()
    rank = system_builders(model, peers=True)[name]()
    rank(query, pool[:4])
    release_memory()
    with peak_rss() as memory:
        rank(query, pool)
    peak = peak_of_process_mb()
    figures = {
        "peak_rss_mb": peak,
        "load_mb": memory["before"] - start,
        "call_mb": memory["peak"] - memory["before"],
    }
    print(json.dumps(figures))


def run_memory(names: list[str], size: int) -> dict[str, dict[str, float]]:
    """Each system in its own process, so one's memory never counts against another."""
    out = {}
    for name in names:
        command = [sys.executable, __file__, "--memory-child", name, "--sizes", str(size)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def timed(function: Callable, spent: list[float]) -> Callable:
    """``function`` that adds its run time to ``spent[0]``."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    return wrapper


def overhead_shares(model: Path, pool: list[str], repeats: int) -> dict[str, tuple[float, float]]:
    """Per configuration: share of the call outside the model forward, and the tokeniser's part of it."""
    from core.local.cross_encoder import load_cross_encoder

    query, docs, out = local_inputs.benchmark_query(), [{"text": t} for t in pool[:100]], {}
    for name, config in OURS.items():
        reranker = create_reranker({"provider": "huggingface", "config": {"model": str(model), **config}})
        runtime = load_cross_encoder(reranker.config)
        forward, tokenize, original = [0.0], [0.0], runtime.forward
        runtime.forward = timed(original, forward)
        runtime.encode = timed(runtime.encode, tokenize)  # shadows the method until deleted
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
            runtime.forward = original
            del runtime.encode
        out[name] = (statistics.median(outside), statistics.median(tokens))
    return out


# --- accuracy --------------------------------------------------------------------------------------
def top10_agreement(model: Path, n_queries: int) -> tuple[dict[str, list[int]], list[float]]:
    """Per query, |top-10 of a configuration ∩ top-10 of float32| on BM25 top-100 candidates."""
    docs, qs = local_inputs.corpus(), local_inputs.queries()
    candidates = list(local_inputs.bm25_candidates(100).items())[:n_queries]
    scorers = {
        name: create_reranker({"provider": "huggingface", "config": {"model": str(model), **config}})
        for name, config in OURS.items()
    }
    reference = scorers.pop("rerank-layer float32")
    agreement: dict[str, list[int]] = {name: [] for name in scorers}
    spread = []
    for qid, ids in candidates:
        texts = [docs[i] for i in ids]
        ref = np.asarray(reference.score(qs[qid], texts))
        spread.append(float(ref.std()))
        ref_top = set(np.argsort(-ref)[:10].tolist())
        for name, scorer in scorers.items():
            top = set(np.argsort(-np.asarray(scorer.score(qs[qid], texts)))[:10].tolist())
            agreement[name].append(len(ref_top & top))
    return agreement, spread


def ndcg_by_precision(max_queries: int | None) -> dict[str, float]:
    """NDCG@10 of BM25 top-100 reranked by the packaged all-MiniLM-L6-v2 (bi-encoder) per precision."""
    from core.evaluation import evaluate

    configs = {
        "float32 (torch)": {"dtype": "float32"},
        "default (auto: bf16 here)": {},
        "onnx float32": {"backend": "onnx"},
        "onnx int8": {"backend": "onnx", "dtype": "int8"},
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


# --- main ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and queries")
    parser.add_argument("--sizes", default="20,100,500", help="candidate counts, comma-separated")
    parser.add_argument("--no-peers", action="store_true", help="only rerank-layer's configurations")
    parser.add_argument("--skip-accuracy", action="store_true", help="skip top-10 agreement and NDCG")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.memory_child:
        memory_child(args.memory_child, sizes[-1])
        return
    repeats = {
        s: (3 if s <= 100 else 1) if args.quick else (7 if s <= 20 else 5 if s <= 100 else 3) for s in sizes
    }

    import torch

    from core.local.precision import cpu_has_native_bf16, resolve_precision

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}, "
        f"auto precision: {resolve_precision('auto', 'cpu', 'torch')}; load average {os.getloadavg()}"
    )
    model = local_inputs.build_model()
    pool = local_inputs.passages(max(sizes))
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(model)
    query = local_inputs.benchmark_query()
    lengths = [len(ids) for ids in tokenizer([query] * len(pool), pool, truncation=True)["input_ids"]]
    print(
        f"model {model}; query {query!r}; {len(pool)} passages of 100-150 words, "
        f"{statistics.mean(lengths):.0f} tokens a pair on average"
    )

    print("\nloading and warming up")
    systems = build_systems(model, peers=not args.no_peers)
    print("\nspeed")
    results = run_speed(systems, sizes, repeats, pool)
    print_speed(results)

    print("\nthe layer's own overhead at 100 candidates: share of the call outside the model forward")
    overhead = overhead_shares(model, pool, 3 if args.quick else 5)
    for name, (outside, tokens) in overhead.items():
        rest = (outside - tokens) * 100
        print(
            f"  {name:42} {outside * 100:5.2f} %  (tokenisation {tokens * 100:.2f} %, the rest {rest:.2f} %)"
        )

    biggest = max(sizes)
    print(f"\nmemory at {biggest} candidates, each system alone in a fresh process")
    memory = run_memory(list(systems), biggest)
    print(f"  {'system':42} {'peak RSS MB':>12} {'model load MB':>14} {'call +MB':>9}")
    for name, m in memory.items():
        print(f"  {name:42} {m['peak_rss_mb']:12.0f} {m['load_mb']:14.0f} {m['call_mb']:9.0f}")

    speed = {s: {n: {"p50_s": m.p50, "runs_s": m.seconds} for n, m in r.items()} for s, r in results.items()}
    report: dict[str, object] = {
        "load_average": os.getloadavg(),
        "speed": speed,
        "overhead_share": overhead,
        "memory": memory,
    }
    if not args.skip_accuracy:
        n_queries = 5 if args.quick else 20  # the last 8 DL19 queries calibrated the head: never used here
        agreement, spread = top10_agreement(model, n_queries)
        print(
            f"\n(a) top-10 agreement with float32, benchmark cross-encoder, BM25 top-100 of {n_queries} DL19 "
            f"queries (logit std per query: {statistics.mean(spread):.2f}; target: >= 9/10)"
        )
        for name, values in agreement.items():
            print(f"  {name:42} mean {statistics.mean(values):.2f}/10, min {min(values)}/10")
        max_queries = 10 if args.quick else None
        print(
            f"\n(b) NDCG@10, TREC DL19 subset, BM25 top-100 reranked by all-MiniLM-L6-v2 (bi-encoder), "
            f"{'10' if args.quick else 'all 43'} queries"
        )
        ndcg = ndcg_by_precision(max_queries)
        base = ndcg["float32 (torch)"]
        for name, value in ndcg.items():
            delta = (
                "" if name.startswith(("float32", "BM25")) else f"  (delta vs float32 {value - base:+.4f})"
            )
            print(f"  {name:42} {value:.4f}{delta}")
        report |= {"top10_agreement": agreement, "logit_std": spread, "ndcg@10": ndcg}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
