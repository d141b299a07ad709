"""README and docs examples: offline-marked Python blocks run as written; the others say what they need.

The blocks run in one subprocess (offline, no API keys, the loopback guard on), from the repository
root; see ``tests/support/doc_examples.py`` for the markers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.doc_examples import CONTINUED, OFFLINE, ROOT, all_examples, python_examples, scripts

EXAMPLES = all_examples()
GROUPS = scripts(EXAMPLES)
API_KEYS = ("OPENAI_API_KEY", "CO_API_KEY", "COHERE_API_KEY", "ZEROENTROPY_API_KEY", "ZERO_ENTROPY_API_KEY")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    out = tmp_path_factory.mktemp("doc-examples") / "results.json"
    env = {k: v for k, v in os.environ.items() if k not in API_KEYS}
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT)
    )
    command = [sys.executable, "-m", "tests.support.run_doc_examples", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_offline_example_runs_as_written(name: str, results: dict[str, dict[str, object]]) -> None:
    outcome = results[name]
    assert outcome["ok"], outcome["error"]
    assert outcome["network"] == []


def test_every_other_python_block_says_what_it_needs() -> None:
    """A block that is not run must say, on the line above it, what it needs ("Needs a Cohere key...")."""
    unlabelled = [e.name for e in EXAMPLES if e.marker is None and e.note is None]
    assert unlabelled == [], (
        f"mark these blocks '{OFFLINE}' (and make them run offline) or put a 'Needs ...' line above them"
    )


def test_the_readme_quickstart_examples_are_run() -> None:
    readme = [name for name in GROUPS if name.startswith("README.md:")]
    assert len(readme) >= 3


def test_markers_and_notes_are_read(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Intro.\n\n"
        f"{OFFLINE}\n```python\nx = 1\n```\n\n"
        f"{CONTINUED}\n```py\nassert x == 1\n```\n\n"
        "*Needs a Cohere key (`CO_API_KEY`).*\n\n```python\ncohere()\n```\n\n"
        "Some text.\n```python\nunlabelled()\n```\n\n"
        "```bash\nnot python\n```\n\n"
        "~~~python\ny = 2\n~~~\n"
    )
    found = python_examples(doc)
    assert [(e.line, e.marker, e.note, e.code) for e in found] == [
        (4, OFFLINE, None, "x = 1\n"),
        (9, CONTINUED, None, "assert x == 1\n"),
        (15, None, "*Needs a Cohere key (`CO_API_KEY`).*", "cohere()\n"),
        (20, None, None, "unlabelled()\n"),
        (28, None, None, "y = 2\n"),
    ]
    groups = scripts(found)
    assert [[e.line for e in group] for group in groups.values()] == [[4, 9]]
    with pytest.raises(ValueError, match="no offline block before it"):
        scripts(found[1:2])
