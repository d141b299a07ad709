"""``python -m core.cli``: the ``rerank-layer`` command."""

from core.cli.main import main

raise SystemExit(main())
