"""The notebooks: committed with outputs, code cells equal to their percent scripts', run offline."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def _load_execute_script() -> ModuleType:
    """``notebooks/execute.py``: the one place that knows how a notebook is read, paired and run."""
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXECUTE = _load_execute_script()
NAMES = [script.stem for script in EXECUTE.SCRIPTS]


def _text_outputs(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def run_notebook(name: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> nbformat.NotebookNode:
    """Execute the committed ``notebooks/<name>`` offline in a kernel on this interpreter."""
    environment = EXECUTE.offline_environment({**os.environ, **env})
    for key in [k for k in os.environ if k not in environment]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return EXECUTE.execute(nbformat.read(NOTEBOOKS / name, as_version=4), timeout=240)


def test_every_notebook_has_its_paired_script():
    assert sorted(NAMES) == ["evaluate", "langchain_quickstart", "llamaindex_quickstart"]
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_committed_cells_are_the_scripts(name):
    """The .ipynb holds exactly the cells of its percent script: run notebooks/execute.py after an edit."""
    script = EXECUTE.read_script(NOTEBOOKS / f"{name}.py")
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(committed)
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in script.cells
    ]
    assert committed.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert jupytext.read(NOTEBOOKS / f"{name}.py").metadata["jupytext"]["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_carry_their_outputs(name):
    """Every code cell ran, in order, without an error, so the notebook reads on a code host."""
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


def test_the_evaluation_notebook_shows_its_plots_as_images():
    committed = nbformat.read(NOTEBOOKS / "evaluate.ipynb", as_version=4)
    images = [
        base64.b64decode(o.data["image/png"])
        for c in committed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 2  # the summary figure and the per-query plot
    assert all(image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 20_000 for image in images)
    per_query = [c for c in committed.cells if c.cell_type == "code" and "plot_report" in c.source]
    assert len(per_query) == 1 and any("image/png" in o.get("data", {}) for o in per_query[0].outputs)


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
    notebook = run_notebook("evaluate.ipynb", monkeypatch, **env)
    out = _text_outputs(notebook)
    assert "nDCG@10" in out and "latency per query: p50" in out
    assert "top-  5: p50" in out and "top- 10: p50" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["top_n"] == 10 and report["queries"] == 4
    for figure in (tmp_path / "evaluate.png", tmp_path / "per_query.png"):
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    shown = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) == 2
