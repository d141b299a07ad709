"""Run the notebooks offline and write each ``.ipynb``, outputs included, from its paired ``.py`` script.

The ``notebooks/*.py`` percent scripts (jupytext) are the source: edit one, then

    python notebooks/execute.py                  # every notebook
    python notebooks/execute.py evaluate         # one (a name, or a path to its .py or .ipynb)

and commit both files. ``jupytext --sync notebooks/NAME.ipynb`` pairs an edit made in Jupyter back
into the script; ``jupytext --to ipynb --update notebooks/NAME.py`` carries a text-only edit into the
notebook and keeps its outputs. Each notebook runs in a kernel on this interpreter, from the notebooks folder, with
the Hugging Face Hub off and no API key in the environment; ``tests/integrations/test_notebooks.py``
checks that the committed code cells are the scripts' and runs the notebooks again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The percent scripts that are notebooks (this file is not one).
SCRIPTS = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
#: Pairing written into each notebook's metadata, so that jupytext --sync knows both files.
FORMATS = "ipynb,py:percent"
API_KEYS = ("OPENAI_API_KEY", "CO_API_KEY", "COHERE_API_KEY", "ZEROENTROPY_API_KEY")


def offline_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` for a notebook kernel: Hub off, no API keys, this checkout importable."""
    env = {k: v for k, v in environ.items() if k not in API_KEYS}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), environ.get("PYTHONPATH", "")) if p),
    )
    return env


def read_script(script: Path) -> nbformat.NotebookNode:
    """The notebook a percent script holds, with stable cell ids and the pairing in its metadata."""
    notebook = jupytext.read(script)
    notebook.metadata.setdefault("jupytext", {})["formats"] = FORMATS
    notebook.metadata["jupytext"].pop("text_representation", None)
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{script.stem.split('_')[0]}-{i:02d}"
    return notebook


def execute(notebook: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell in a ``python3`` kernel (this venv's), from the notebooks folder; raise on a failure.

    The kernel inherits ``os.environ``: use :func:`offline_environment` to set it.
    """
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute()  # CellExecutionError names the failing cell
    return notebook


def resolve(name: str) -> Path:
    """The percent script of ``name`` (a stem, or a path to the .py or the .ipynb)."""
    script = HERE / f"{Path(name).stem}.py"
    if script not in SCRIPTS:
        raise SystemExit(f"no notebook script {script.name}; notebooks: {[p.stem for p in SCRIPTS]}")
    return script


def main(argv: list[str]) -> int:
    """Execute the named notebooks (default: all) and write their .ipynb files."""
    env = offline_environment(dict(os.environ))
    os.environ.clear()
    os.environ.update(env)
    for script in [resolve(a) for a in argv] or SCRIPTS:
        notebook = execute(read_script(script))
        nbformat.validate(notebook)
        target = script.with_suffix(".ipynb")
        jupytext.write(notebook, target, fmt="ipynb")
        print("wrote", target.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
