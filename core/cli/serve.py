"""``rerank-layer serve``: run one reranker behind the Cohere / Jina rerank HTTP API under uvicorn."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from core.serve.settings import API_KEY_ENV, SERVE, ServeSettings

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add the ``serve`` sub-command; returns its handler by name."""
    from core.cli.main import add_reranker_options

    defaults = ServeSettings(api_key=None)
    serve = subparsers.add_parser(
        "serve",
        help="serve a reranker over HTTP (Cohere v2 /v2/rerank, Jina/vLLM /v1/rerank and /rerank)",
        description="Serve one reranker over HTTP; any Cohere or Jina rerank client can call it. "
        "See docs/serve.md.",
    )
    serve.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=defaults.port, help="TCP port (default %(default)s)")
    serve.add_argument(
        "--served-model-name",
        help="the name clients send as 'model' (default: the reranker's model name)",
    )
    serve.add_argument(
        "--api-key",
        help=f"bearer key clients must send (default: ${API_KEY_ENV}; prefer the variable, "
        "a command line is visible to other users)",
    )
    limits = serve.add_argument_group("limits")
    limits.add_argument("--max-documents", type=int, default=defaults.max_documents, help="per request")
    limits.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes, help="per request")
    limits.add_argument(
        "--max-queue", type=int, default=defaults.max_queue, help="requests in the server at once; then 429"
    )
    limits.add_argument(
        "--request-timeout", type=float, default=defaults.request_timeout, help="seconds; then 504"
    )
    batching = serve.add_argument_group("batching across requests (local models)")
    batching.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="longest a request waits for others to join its batch (default %(default)s)",
    )
    batching.add_argument(
        "--max-batch-pairs",
        type=int,
        default=defaults.max_batch_pairs,
        help="pairs scored in one model call at most (default %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="uvicorn's log level (default %(default)s)",
    )
    serve.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    add_reranker_options(serve)
    return {"serve": run_server}


def run_server(args: argparse.Namespace) -> int:
    """Build the reranker and the app, then serve until SIGINT / SIGTERM (in-flight requests finish)."""
    from core.deps import require
    from core.registry import create_reranker
    from core.serve import create_app
    from core.specs import build_spec

    uvicorn = require("uvicorn", extra="serve", provider=SERVE)
    fields = {
        "host": args.host,
        "port": args.port,
        "served_model_name": args.served_model_name,
        "max_documents": args.max_documents,
        "max_body_bytes": args.max_body_bytes,
        "max_queue": args.max_queue,
        "request_timeout": args.request_timeout,
        "max_wait_ms": args.max_wait_ms,
        "max_batch_pairs": args.max_batch_pairs,
    }
    if args.api_key:
        fields["api_key"] = args.api_key
    settings = _settings(fields)
    reranker = create_reranker(build_spec(args.reranker, args.provider, args.model, args.set))
    app = create_app(reranker, settings)
    logging.basicConfig(format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("rerank_layer").setLevel(args.log_level.upper())
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        timeout_graceful_shutdown=int(settings.request_timeout) + 5,
    )
    return 0


def _settings(fields: dict[str, object]) -> ServeSettings:
    from pydantic import ValidationError

    from core.errors import ConfigError

    try:
        return ServeSettings.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"--{_flag(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid serve option: {problems}") from None


def _flag(location: tuple[int | str, ...]) -> str:
    return "-".join(str(part) for part in location).replace("_", "-")
