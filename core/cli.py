"""The ``rerank-layer`` command line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _demo(args: argparse.Namespace) -> int:
    from core.demo import DEMO_DOCUMENTS, DEMO_QUERY, format_table, run_demo

    print(f"Query: {DEMO_QUERY}\n")
    print("First-stage order:")
    print(format_table([dict(d, rerank_score=None) for d in DEMO_DOCUMENTS]))
    rows = run_demo(top_k=args.top_k)
    print("\nReranked (sentence_transformer, embedded all-MiniLM-L6-v2, offline):")
    print(format_table(rows))
    return 0


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The argument parser and the handler of each sub-command."""
    parser = argparse.ArgumentParser(prog="rerank-layer", description="Second-stage reranking for retrieval.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="rerank a small example offline with the embedded model")
    demo.add_argument("--top-k", type=int, default=None, help="keep only the best K documents")
    return parser, {"demo": _demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rerank-layer`` command."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    return handlers[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
