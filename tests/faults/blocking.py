"""Run Python in a subprocess where chosen packages cannot be imported, as if never installed.

A ``sitecustomize`` on PYTHONPATH sets ``sys.modules[name] = None`` for each blocked top-level package
before anything else runs: ``import name`` then raises ModuleNotFoundError and
``importlib.util.find_spec(name)`` returns None, as for a package that is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SITECUSTOMIZE = """\
import os
import sys

for _name in filter(None, os.environ.get("BLOCKED_PACKAGES", "").split(",")):
    sys.modules[_name] = None
"""


def run_without(
    packages: Sequence[str], args: Sequence[str], folder: Path, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``python *args`` from the repository root with ``packages`` missing; output captured."""
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(REPO)])
    env["BLOCKED_PACKAGES"] = ",".join(packages)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
