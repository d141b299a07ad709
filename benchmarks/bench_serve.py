"""Serving: the benchmark cross-encoder behind ``rerank-layer serve``, many concurrent clients.

Run from the repository root, under the benchmark lock:

    flock /work/bench.lock .venv/bin/python benchmarks/bench_serve.py            # about 3 minutes
    flock /work/bench.lock .venv/bin/python benchmarks/bench_serve.py --rounds 1 # quicker

Prints, for 32 concurrent clients each sending requests of 20 passages (a DL19 query each):
- throughput (pairs/s) of the server against the same requests scored one at a time in-process
  (``reranker.rank``, same model, same config), round by round (each round: the clients' requests
  in-process, then the same requests sent by all clients at once);
- p50 / p99 latency under that load and how many requests each model call held;
- at low load (one client, one request at a time): the client's latency, the model time the
  server reports (``Server-Timing``), the overhead the client sees (latency - model time: HTTP on
  both sides, the queue, the pipeline, scheduling) and the part of it spent inside the server.
See docs/serve.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

import httpx  # noqa: E402

from benchmarks import local_inputs  # noqa: E402
from core import create_reranker  # noqa: E402

MODEL_NAME = "bench-minilm-l6"


def use_shared_data() -> None:
    """From a git worktree, read the benchmark data beside the main checkout (``../shared`` of it)."""
    if local_inputs.DATA.is_dir():
        return
    common = subprocess.run(
        ["git", "rev-parse", "--git-common-dir"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    if common:
        local_inputs.DATA = (ROOT / common).resolve().parents[1] / "shared" / "data" / local_inputs.DATA.name


def build_requests(count: int, docs: int) -> list[tuple[str, list[str]]]:
    """``count`` requests: DL19 queries in turn, each with its own window of ``docs`` passages."""
    queries = list(local_inputs.queries().values())
    pool = local_inputs.passages(docs * 12)
    out = []
    for i in range(count):
        start = (i * 7) % (len(pool) - docs)
        out.append((queries[i % len(queries)], pool[start : start + docs]))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- in-process baseline ---------------------------------------------------------------------------
def in_process(reranker: object, requests: list[tuple[str, list[str]]]) -> tuple[float, list[float]]:
    """(pairs/s, per-request seconds) scoring the requests one at a time."""
    times = []
    started = time.perf_counter()
    for query, docs in requests:
        t0 = time.perf_counter()
        reranker.rank(query, docs)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    return sum(len(d) for _, d in requests) / wall, times


# --- the server ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model: Path, config: dict[str, object], port: int, extra: list[str]
) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "core.cli.main", "serve", "--port", str(port),
        "--provider", "huggingface", "--model", str(model), "--served-model-name", MODEL_NAME,
        "--no-access-log", "--log-level", "warning", "--max-queue", "1024", "--request-timeout", "3600",
        *extra,
    ]  # fmt: skip
    for key, value in config.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{process.communicate()[1]}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


async def load(url: str, requests: list[tuple[str, list[str]]], clients: int) -> tuple[float, list[float]]:
    """(wall seconds, per-request latencies) with ``clients`` clients, each one request at a time."""
    latencies: list[float] = []
    work = iter(requests)

    async def client(http: httpx.AsyncClient) -> None:
        for query, docs in work:
            t0 = time.perf_counter()
            response = await http.post(
                "/v2/rerank", json={"model": MODEL_NAME, "query": query, "documents": docs}
            )
            response.raise_for_status()
            latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return time.perf_counter() - started, latencies


def low_load(url: str, requests: list[tuple[str, list[str]]]) -> dict[str, list[float]]:
    """One request at a time: client latency, and the server's model and total time (Server-Timing)."""
    out: dict[str, list[float]] = {"latency": [], "model": [], "total": []}
    with httpx.Client(base_url=url, timeout=600) as http:
        for query, docs in requests:
            t0 = time.perf_counter()
            response = http.post("/v2/rerank", json={"model": MODEL_NAME, "query": query, "documents": docs})
            out["latency"].append(time.perf_counter() - t0)
            response.raise_for_status()
            timing = dict(p.strip().split(";dur=") for p in response.headers["server-timing"].split(","))
            out["model"].append(float(timing["model"]) / 1000)
            out["total"].append(float(timing["total"]) / 1000)
    return out


def batch_counts(url: str) -> tuple[float, float, float]:
    """(model calls, requests scored, pairs scored) so far, from /metrics."""
    values: dict[str, float] = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(("rerank_batch_requests_", "rerank_batch_pairs_")) and "{" not in line:
            name, value = line.split()
            values[name] = float(value)
    return (
        values["rerank_batch_requests_count"],
        values["rerank_batch_requests_sum"],
        values["rerank_batch_pairs_sum"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--docs", type=int, default=20, help="documents per request")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one request per client")
    parser.add_argument("--low-load", type=int, default=15, help="requests sent one at a time")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="reranker config")
    parser.add_argument("--max-batch-pairs", type=int, default=None)
    parser.add_argument("--max-wait-ms", type=float, default=None)
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    config: dict[str, object] = {}
    for setting in args.set:
        key, _, value = setting.partition("=")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    extra = []
    if args.max_batch_pairs is not None:
        extra += ["--max-batch-pairs", str(args.max_batch_pairs)]
    if args.max_wait_ms is not None:
        extra += ["--max-wait-ms", str(args.max_wait_ms)]

    use_shared_data()
    model = local_inputs.build_model()
    requests = build_requests(args.clients * args.rounds, args.docs)
    quiet = build_requests(args.low_load, args.docs)
    pairs = sum(len(d) for _, d in requests)
    print(f"model: {model.name} (MiniLM-L6 cross-encoder), config: {config or 'defaults'}")
    print(f"load: {args.clients} clients x {args.rounds} requests of {args.docs} passages = {pairs} pairs")

    reranker = create_reranker({"provider": "huggingface", "config": {"model": str(model), **config}})
    reranker.warmup()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(model, config, port, extra)
    alone_time = served_time = 0.0
    latencies: list[float] = []
    try:
        in_process(reranker, requests[:3])
        asyncio.run(load(url, requests[: args.clients], args.clients))  # warm-up: connections, batch shapes
        counts = batch_counts(url)
        for r in range(args.rounds):  # round-robin, so a change in machine load hits both sides
            chunk = requests[r * args.clients : (r + 1) * args.clients]
            chunk_pairs = sum(len(d) for _, d in chunk)
            _, times = in_process(reranker, chunk)
            wall, chunk_latencies = asyncio.run(load(url, chunk, args.clients))
            alone_time, served_time = alone_time + sum(times), served_time + wall
            latencies += chunk_latencies
            print(
                f"round {r + 1}: in-process {chunk_pairs / sum(times):.1f} pairs/s, "
                f"served {chunk_pairs / wall:.1f} pairs/s ({sum(times) / wall:.2f}x)"
            )
        calls, scored, scored_pairs = (b - a for a, b in zip(counts, batch_counts(url), strict=True))
        per_call, pairs_per_call = scored / calls, scored_pairs / calls
        quiet_figures = low_load(url, quiet)
    finally:
        stop_server(server)
    _, quiet_alone = in_process(reranker, quiet)
    baseline, served = pairs / alone_time, pairs / served_time

    overhead = [
        lat - model for lat, model in zip(quiet_figures["latency"], quiet_figures["model"], strict=True)
    ]
    inside = [tot - model for tot, model in zip(quiet_figures["total"], quiet_figures["model"], strict=True)]
    ms = 1000
    print()
    head = f"{args.clients} clients, {args.docs} docs/request"
    print(f"| {head} | pairs/s | x in-process | p50 latency | p99 latency |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| rerank-layer serve | {served:.1f} | **{served / baseline:.2f}** | "
        f"{percentile(latencies, 50):.2f} s | {percentile(latencies, 99):.2f} s |"
    )
    print(f"| in-process, one at a time | {baseline:.1f} | 1.00 | | |")
    print(
        f"\nmodel calls under load: {calls:.0f}, {per_call:.1f} requests "
        f"and {pairs_per_call:.0f} pairs per call on average"
    )
    print(f"\nlow load ({args.low_load} requests, one at a time), medians:")
    print(
        f"  client latency {statistics.median(quiet_figures['latency']) * ms:.1f} ms, "
        f"model time (Server-Timing) {statistics.median(quiet_figures['model']) * ms:.1f} ms, "
        f"in-process rank() {statistics.median(quiet_alone) * ms:.1f} ms"
    )
    print(
        f"  overhead seen by the client = latency - model time: median "
        f"{statistics.median(overhead) * ms:.2f} ms, min {min(overhead) * ms:.2f} ms, "
        f"p90 {percentile(overhead, 90) * ms:.2f} ms"
    )
    print(
        f"  of which inside the server (arrival to answer, outside the model): median "
        f"{statistics.median(inside) * ms:.2f} ms, p90 {percentile(inside, 90) * ms:.2f} ms"
    )
    print(
        f"\ntargets: batching >= 1.5x in-process: {'met' if served / baseline >= 1.5 else 'NOT met'} "
        f"({served / baseline:.2f}x); overhead < 5 ms: "
        f"{'met' if statistics.median(overhead) * ms < 5 else 'NOT met'}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "config": config,
                    "in_process_pairs_per_s": baseline,
                    "served_pairs_per_s": served,
                    "latencies_s": latencies,
                    "low_load": quiet_figures,
                    "in_process_low_load_s": quiet_alone,
                    "batch": {
                        "calls": calls,
                        "requests_per_call": per_call,
                        "pairs_per_call": pairs_per_call,
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
