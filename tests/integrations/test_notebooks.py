"""The notebooks run top to bottom offline (nbclient, the venv's own kernel) and show what they promise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def _text_outputs(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def run_notebook(name: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>`` in a kernel on this interpreter, offline, from the notebooks folder."""
    for key in ("OPENAI_API_KEY", "CO_API_KEY", "COHERE_API_KEY", "ZEROENTROPY_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # "python3" is ipykernel's kernel; jupyter_client runs its "python" as sys.executable (this venv).
    client = NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    return notebook


def test_notebooks_are_committed_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_langchain_quickstart_runs(monkeypatch):
    out = _text_outputs(run_notebook("langchain_quickstart.ipynb", monkeypatch))
    assert "best before: doc-0" in out  # BM25 puts the solar-panel document first
    assert "best after:  doc-2" in out  # the reranker puts photosynthesis first
    assert "[0." in out  # reranked documents carry relevance scores


def test_llamaindex_quickstart_runs(monkeypatch):
    out = _text_outputs(run_notebook("llamaindex_quickstart.ipynb", monkeypatch))
    assert "best after: doc-2" in out
    assert "[  -  ]" in out and "[0." in out  # keyword nodes have no score; reranked ones do


def test_evaluate_notebook_runs_and_saves_the_figure(monkeypatch, tmp_path):
    env = {"RERANK_EVAL_OUTPUT": str(tmp_path), "RERANK_EVAL_QUERIES": "4", "RERANK_EVAL_TOP_N": "10"}
    out = _text_outputs(run_notebook("evaluate.ipynb", monkeypatch, **env))
    assert "nDCG@10" in out and "latency per query: p50" in out
    assert "top-  5: p50" in out and "top- 10: p50" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["top_n"] == 10 and report["queries"] == 4
    figure = tmp_path / "evaluate.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
