"""Run the docs' offline examples in this process, behind the loopback guard; write what happened as JSON.

``python -m tests.support.run_doc_examples OUT.json [NAME ...]``: each named group (default: all) runs
in a fresh namespace, its blocks in order; a block's traceback names its file and line.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from tests.support.doc_examples import all_examples, scripts
from tests.support.network_guard import loopback_only


def run(names: list[str]) -> dict[str, dict[str, object]]:
    """``{group name: {"ok", "error", "network"}}`` for the named groups (all when none is named)."""
    groups = scripts(all_examples())
    results: dict[str, dict[str, object]] = {}
    with loopback_only() as attempts:
        for name in names or list(groups):
            attempts.clear()
            namespace: dict[str, object] = {"__name__": "__main__"}
            error = None
            try:
                for example in groups[name]:
                    exec(compile(example.code, example.name, "exec"), namespace)
            except BaseException:
                error = traceback.format_exc()
            results[name] = {"ok": error is None, "error": error, "network": list(attempts)}
    return results


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.write_text(json.dumps(run(sys.argv[2:]), indent=2), encoding="utf-8")
