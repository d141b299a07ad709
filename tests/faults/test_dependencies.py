"""Group 6: a missing optional package raises MissingDependencyError naming the extra, never fails open.

Each case runs through the public API in a subprocess where the package cannot be imported.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.faults.blocking import run_without

#: The README's first example, as a user would paste it.
README_EXAMPLE = textwrap.dedent(
    """
    from core import create_reranker

    reranker = create_reranker({"provider": "sentence_transformer", "config": {"model": "embedded"}})
    docs = [
        {"id": 1, "memory": "Paris is the capital of France."},
        {"id": 2, "text": "The stock market closed higher."},
        "Berlin is the capital of Germany.",
    ]
    for row in reranker.rerank("What is the capital of France?", docs, top_k=2):
        print(row["id"] if "id" in row else row["text"], round(row["rerank_score"], 3))
    """
)

#: A script that prints how building (and using) a reranker from SPEC went.
OUTCOME = textwrap.dedent(
    """
    import json, sys
    from core import MissingDependencyError, create_reranker

    try:
        rows = create_reranker(json.loads(sys.argv[1])).rerank("capital of france", ["paris", "rain"])
    except MissingDependencyError as exc:
        print("MissingDependencyError:", exc.package, exc.extra, "|", exc)
    else:
        print("NO ERROR", rows, rows.error)
    """
)


def test_the_readme_example_without_numpy_raises_naming_the_extra(tmp_path: Path) -> None:
    done = run_without(["numpy"], ["-c", README_EXAMPLE], tmp_path)
    assert done.returncode == 1
    assert "MissingDependencyError" in done.stderr
    assert "needs the 'numpy' package. Install it with: pip install 'rerank-layer[local]'" in done.stderr
    assert done.stdout == ""  # nothing was printed as if it had been reranked


@pytest.mark.parametrize(
    ("blocked", "spec", "package"),
    [
        (["numpy"], '{"provider": "huggingface", "config": {"model": "BAAI/bge-reranker-base"}}', "numpy"),
        (["torch"], '{"provider": "huggingface", "config": {"model": "BAAI/bge-reranker-base"}}', "torch"),
        (["torch"], '{"provider": "sentence_transformer", "config": {"model": "embedded"}}', "torch"),
    ],
)
def test_a_local_reranker_without_its_packages_raises_at_creation(
    tmp_path: Path, blocked: list[str], spec: str, package: str
) -> None:
    done = run_without(blocked, ["-c", OUTCOME, spec], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"MissingDependencyError: {package} local |"), done.stdout + done.stderr


def test_the_cli_without_numpy_exits_1_naming_the_extra(tmp_path: Path) -> None:
    documents = tmp_path / "docs.txt"
    documents.write_text("Paris is the capital of France.\nBerlin is in Germany.\n")
    cli = "import sys; from core.cli import main; sys.exit(main(sys.argv[1:]))"
    done = run_without(["numpy"], ["-c", cli, "rerank", str(documents), "-q", "capital"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pip install 'rerank-layer[local]'" in done.stderr
    assert done.stdout == ""
