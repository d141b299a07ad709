"""``eval --plot`` / ``--html``: the per-query nDCG@10 figure and the metric table, on the toy BEIR data."""

from __future__ import annotations

import sys

import pytest

from core.cli import main
from core.errors import InvalidInputError, MissingDependencyError
from core.evaluation import evaluate
from core.evaluation.plot import PER_QUERY_AXES, TABLE_AXES, per_query_deltas, plot_report, write_html
from tests.support.adapter_support import PLUGIN
from tests.support.beir_files import write_beir, write_trec_run
from tests.support.toy_rerankers import ScriptedReranker

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def beir_dir(tmp_path):
    return write_beir(tmp_path / "toy")


@pytest.fixture
def report(beir_dir, tmp_path):
    """q1 better (relevant documents moved up), q2 worse (the relevant one moved down), q3 unchanged."""
    run_file = write_trec_run(
        tmp_path / "first.run", {"q1": ["d2", "d6", "d3", "d1"], "q2": ["d5", "d6"], "q3": ["d4", "d2"]}
    )
    reranker = ScriptedReranker({"largest city of France": 0.9, "Eiffel": 0.8, "snake": 0.9, "yellow": 0.9})
    return evaluate(beir_dir, reranker, run=run_file, progress=False)


def axes(fig, label):
    (found,) = [ax for ax in fig.axes if ax.get_label() == label]
    return found


def test_the_figure_has_one_column_per_query_and_the_metric_table(report, tmp_path):
    fig = plot_report(report, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == PNG_MAGIC
    per_query = axes(fig, PER_QUERY_AXES)
    before, after = per_query.collections  # the two scatter layers
    assert len(before.get_offsets()) == len(after.get_offsets()) == report.queries == 3
    rows = per_query_deltas(report)
    assert [qid for qid, _, _ in rows] == ["q2", "q3", "q1"]  # worst change first
    assert [float(y) for _, y in before.get_offsets()] == [b for _, b, _ in rows]
    assert [float(y) for _, y in after.get_offsets()] == [a for _, _, a in rows]
    assert [t.get_text() for t in per_query.get_xticklabels()] == ["q2", "q3", "q1"]
    assert len(per_query.lines) == 2  # a line for each query that changed
    assert "1 better, 1 worse, 1 same" in per_query.get_title()
    (table,) = axes(fig, TABLE_AXES).tables
    texts = [cell.get_text().get_text() for cell in table.get_celld().values()]
    ndcg = report.metrics
    assert "nDCG@10" in texts and f"{ndcg['after']['ndcg@10']:.3f}" in texts
    assert f"{ndcg['delta']['mrr@10']:+.3f}" in texts


def test_svg_by_suffix_and_an_html_page(report, tmp_path):
    svg = tmp_path / "plot.svg"
    plot_report(report, svg)
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and svg.stat().st_size > 1000
    page = write_html(report, tmp_path / "report.html").read_text()
    assert page.count("<svg") == 1 and "nDCG@10" in page
    assert all(f"<td>{qid}</td>" in page for qid in ("q1", "q2", "q3"))
    with pytest.raises(InvalidInputError, match=r"plot file .*plot\.jpg.* must end in \.png or \.svg"):
        plot_report(report, tmp_path / "plot.jpg")


def test_cli_eval_writes_the_plot_and_the_page(beir_dir, tmp_path, capsys):
    png, page = tmp_path / "out" / "eval.png", tmp_path / "eval.html"
    png.parent.mkdir()
    argv = [
        "eval",
        str(beir_dir),
        "--reranker",
        PLUGIN,
        "--no-progress",
        "--plot",
        str(png),
        "--html",
        str(page),
    ]
    assert main(argv) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert "<svg" in page.read_text()
    err = capsys.readouterr().err
    assert f"wrote {png}" in err and f"wrote {page}" in err


def test_without_matplotlib_the_error_names_the_extra(beir_dir, report, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[plot\]") as info:
        plot_report(report, tmp_path / "plot.png")
    assert info.value.extra == "plot"
    assert main(["eval", str(beir_dir), "--no-progress", "--plot", str(tmp_path / "p.png")]) == 1
    assert "rerank-layer[plot]" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_cli_refuses_a_plot_suffix_before_evaluating(beir_dir, tmp_path, capsys):
    assert main(["eval", str(beir_dir), "--no-progress", "--plot", str(tmp_path / "p.pdf")]) == 2
    err = capsys.readouterr().err
    assert "must end in .png or .svg" in err and "nDCG" not in capsys.readouterr().out
