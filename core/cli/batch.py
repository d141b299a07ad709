"""``rerank-layer batch``: rerank a table of queries and candidates, in this process or on Ray."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> Any:
    """Add the ``batch`` sub-command; returns its handler."""
    from core.batch.job import DEFAULT_SHARD_PAIRS, ENGINES
    from core.cli.main import add_command, add_reranker_options

    batch = add_command(
        subparsers,
        "batch",
        "rerank a table (JSONL, Parquet, or a BEIR folder + run) into JSONL, Parquet or a TREC run",
    )
    batch.description = (
        "Rerank every row of INPUT into OUTPUT, resumably: shards go to OUTPUT.shards/ and a rerun skips "
        "the finished ones. Rows are grouped (query, documents, optional doc_ids) or flat pairs "
        "(query_id, doc_id, query, text). Exit status 3: the output was written, but some queries kept "
        "their first-stage order."
    )
    batch.add_argument("input", help=".jsonl or .parquet file, or a BEIR folder (with --run)")
    batch.add_argument("-o", "--output", required=True, help=".jsonl, .parquet, or a TREC run (.run, .trec)")
    batch.add_argument("--run", help="first-stage TREC run to rerank when INPUT is a BEIR folder")
    batch.add_argument("--engine", choices=ENGINES, default="local", help="local (this process) or ray")
    batch.add_argument(
        "--workers",
        type=int,
        help="ray: actors (default 2); local: queries at once (default: max_concurrency for API "
        "providers, else 1)",
    )
    batch.add_argument(
        "--num-cpus", type=float, default=1.0, help="ray: CPUs each actor reserves (default 1)"
    )
    batch.add_argument(
        "--num-gpus", type=float, default=0.0, help="ray: GPUs each actor reserves (default 0)"
    )
    batch.add_argument("--batch-pairs", type=int, help="ray: pairs per actor batch (default 512)")
    batch.add_argument(
        "--shard-pairs",
        type=int,
        default=DEFAULT_SHARD_PAIRS,
        help=f"pairs per output shard (default {DEFAULT_SHARD_PAIRS})",
    )
    batch.add_argument(
        "--stats", metavar="DIR", help="ray: each actor keeps its figures in DIR (load, memory)"
    )
    batch.add_argument("--shape", choices=("grouped", "flat"), help="row shape (default: detected)")
    batch.add_argument(
        "--restart", action="store_true", help="discard shards of an earlier run and start over"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_reranker_options(batch)
    return _batch


def _batch(args: argparse.Namespace) -> int:
    from core.batch.job import run_batch
    from core.cli.main import EXIT_OK, failed_open, spec_from_args

    summary = run_batch(
        args.input,
        args.output,
        spec_from_args(args),
        run=args.run,
        engine=args.engine,
        workers=args.workers,
        shape=args.shape,
        shard_pairs=args.shard_pairs,
        batch_pairs=args.batch_pairs,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        restart=args.restart,
        progress=not args.no_progress,
        stats_dir=args.stats,
    )
    print(summary.describe(), file=sys.stderr)
    if summary.failed_queries:
        return failed_open("batch", f"{summary.failed_queries} queries (rerank_error in the output)")
    return EXIT_OK
