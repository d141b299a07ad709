"""The ``rerank-layer`` command line: ``demo``, ``rerank`` and ``eval``."""

from core.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
