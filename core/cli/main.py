"""The ``rerank-layer`` command line: ``demo``, ``rerank`` and ``eval``, with documented exit statuses."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.cli import batch as batch_command
from core.cli import serve as serve_command
from core.errors import ConfigError, InvalidInputError, RerankError

Handler = Callable[[argparse.Namespace], int]

#: Exit statuses of every sub-command (shown by ``--help``; see docs/safety.md).
EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_USAGE_ERROR = 2
EXIT_FAILED_OPEN = 3

EXIT_STATUSES = f"""exit status:
  {EXIT_OK}  success: every call was reranked
  {EXIT_RUNTIME_ERROR}  runtime error: a provider failed with on_error="raise", a missing optional package,
     an I/O error, or an unexpected error
  {EXIT_USAGE_ERROR}  usage error: bad arguments, reranker spec or config, a missing input file, or invalid
     input (documents, BEIR folder, qrels, run file)
  {EXIT_FAILED_OPEN}  failed open: the output was written, but reranking failed and the first-stage order
     was kept (rerank, demo: the call; eval: at least one query)"""


def failed_open(command: str, error: str) -> int:
    print(f"rerank-layer {command}: reranking failed, first-stage order kept: {error}", file=sys.stderr)
    return EXIT_FAILED_OPEN


def _demo(args: argparse.Namespace) -> int:
    from core.cli.demo import DEMO_DOCUMENTS, DEMO_QUERY, format_table, run_demo

    print(f"Query: {DEMO_QUERY}\n")
    print("First-stage order:")
    print(format_table([dict(d, rerank_score=None) for d in DEMO_DOCUMENTS]))
    rows = run_demo(top_k=args.top_k)
    print("\nReranked (sentence_transformer, embedded all-MiniLM-L6-v2, offline):")
    print(format_table(rows))
    return EXIT_OK if rows.error is None else failed_open("demo", rows.error)


def spec_from_args(args: argparse.Namespace) -> dict[str, object]:
    from core.specs import build_spec

    return build_spec(args.reranker, args.provider, args.model, args.set)


def _rerank(args: argparse.Namespace) -> int:
    from core.cli.io import format_ranked_table, ranked_json, read_documents
    from core.registry import create_reranker

    if args.documents in (None, "-"):
        text = sys.stdin.read()
    else:
        text = Path(args.documents).read_text(encoding="utf-8")
    documents = read_documents(text, args.input_format)
    rows = create_reranker(spec_from_args(args)).rerank(args.query, documents, top_k=args.top_k)
    print(ranked_json(rows) if args.format == "json" else format_ranked_table(rows))
    return EXIT_OK if rows.error is None else failed_open("rerank", rows.error)


def _eval(args: argparse.Namespace) -> int:
    from core.evaluation import evaluate

    if args.plot is not None or args.html is not None:  # before the run: a missing extra fails fast
        from core.evaluation.plot import plot_format, require_matplotlib

        if args.plot is not None:
            plot_format(args.plot)
        require_matplotlib()
    report = evaluate(
        args.data,
        spec_from_args(args),
        run=args.run,
        top_n=args.top_n,
        split=args.split,
        qrels_file=args.qrels,
        max_queries=args.max_queries,
        relevance_level=args.relevance_level,
        concurrency=args.concurrency,
        progress=not args.no_progress,
    )
    if args.output is not None:
        paths = report.save(args.output)
        print("wrote " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    if args.plot is not None:
        from core.evaluation.plot import save_plot

        print(f"wrote {save_plot(report, args.plot)}", file=sys.stderr)
    if args.html is not None:
        from core.evaluation.plot import write_html

        print(f"wrote {write_html(report, args.html)}", file=sys.stderr)
    print(json.dumps(report.to_dict(per_query=False), indent=2) if args.json else report.format_table())
    if report.failed:
        first = next(iter(report.failed.values()))
        return failed_open("eval", f"{len(report.failed)} of {report.queries} queries; first: {first}")
    return EXIT_OK


def add_reranker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reranker (default: the embedded all-MiniLM-L6-v2, offline)")
    group.add_argument(
        "--reranker",
        metavar="SPEC",
        help="a spec file (.json/.yaml: provider, config, fallbacks) or a string: 'provider' or "
        "'provider:model', e.g. 'huggingface:BAAI/bge-reranker-base'",
    )
    group.add_argument("--provider", help="provider name, e.g. sentence_transformer, huggingface, cohere")
    group.add_argument("--model", help="model name or path (config.model)")
    group.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="any config field; VALUE is read as JSON when it parses (repeatable)",
    )


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` lists the exit statuses."""
    return sub.add_parser(
        name, help=help, epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    """The argument parser and the handler of each sub-command."""
    parser = argparse.ArgumentParser(
        prog="rerank-layer",
        description="Second-stage reranking for retrieval.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = add_command(sub, "demo", "rerank a small example offline with the embedded model")
    demo.add_argument("--top-k", type=int, default=None, help="keep only the best K documents")

    rerank = add_command(sub, "rerank", "rerank documents (a file or stdin) for one query")
    rerank.add_argument(
        "documents", nargs="?", help="JSON array, JSON lines or plain lines; '-' or none: stdin"
    )
    rerank.add_argument("-q", "--query", required=True, help="the query")
    rerank.add_argument("--top-k", type=int, default=None, help="keep only the best K documents")
    rerank.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    rerank.add_argument(
        "--input-format",
        choices=("auto", "json", "jsonl", "lines"),
        default="auto",
        help="how to read documents",
    )
    add_reranker_options(rerank)

    ev = add_command(sub, "eval", "measure NDCG/MRR/recall and latency before and after reranking")
    ev.add_argument("data", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    ev.add_argument("--run", help="first-stage TREC run file (default: BM25 top-100 built here)")
    ev.add_argument("--top-n", type=int, default=100, help="candidates reranked per query (default 100)")
    ev.add_argument("--split", default="test", help="qrels split (default test)")
    ev.add_argument("--qrels", help="qrels file to use instead of qrels/<split>.tsv")
    ev.add_argument("--max-queries", type=int, help="evaluate only the first N judged queries")
    ev.add_argument(
        "--relevance-level",
        type=int,
        default=1,
        help="lowest grade counted relevant for MRR/recall (default 1)",
    )
    ev.add_argument("--concurrency", type=int, default=1, help="queries reranked at once (API providers)")
    ev.add_argument("--output", "-o", help="folder for report.json, reranked.run and first_stage.run")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    ev.add_argument(
        "--plot",
        metavar="FILE",
        help="draw per-query nDCG@10 before/after and the metric table to FILE (.png or .svg; "
        "needs rerank-layer[plot])",
    )
    ev.add_argument(
        "--html",
        metavar="FILE",
        help="write the plot and the tables as one HTML page (needs rerank-layer[plot])",
    )
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_reranker_options(ev)
    handlers = {"demo": _demo, "rerank": _rerank, "eval": _eval, "batch": batch_command.register(sub)}
    return parser, {**handlers, **serve_command.register(sub)}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rerank-layer`` command."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in the output
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except (ConfigError, InvalidInputError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"rerank-layer {args.command}: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    except (RerankError, OSError) as exc:
        print(f"rerank-layer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
