"""Pictures of an evaluation: per-query nDCG@10 before and after reranking, and the metric table.

``plot_report`` draws a matplotlib ``Figure`` (no pyplot, so no global state) and saves it as PNG or
SVG by the file's suffix; ``write_html`` writes one self-contained page (the SVG plus the tables).
matplotlib is the ``plot`` extra: ``pip install 'rerank-layer[plot]'``.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.deps import require
from core.errors import InvalidInputError
from core.evaluation.metrics import METRICS
from core.evaluation.report import LABELS, EvaluationReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: File suffixes ``save_plot`` writes, and matplotlib's format name for each.
PLOT_FORMATS = {".png": "png", ".svg": "svg"}

#: The metric plotted per query.
PER_QUERY_METRIC = "ndcg@10"

#: ``Axes.get_label()`` of the two panels, so that callers and tests can find them.
PER_QUERY_AXES = "per_query"
TABLE_AXES = "metrics"

BEFORE, AFTER, UP, DOWN = "#9aa5b1", "#2f6fde", "#2e9d5b", "#d1493f"


def require_matplotlib() -> Any:
    """The matplotlib module, or ``MissingDependencyError`` naming the ``plot`` extra."""
    return require("matplotlib", extra="plot", provider="eval --plot")


def plot_format(path: str | Path) -> str:
    """matplotlib's format for ``path`` (``png`` or ``svg``); any other suffix is an error naming it."""
    suffix = Path(path).suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise InvalidInputError(f"plot file {str(path)!r} must end in .png or .svg, got {suffix or 'none'!r}")
    return PLOT_FORMATS[suffix]


def per_query_deltas(
    report: EvaluationReport, metric: str = PER_QUERY_METRIC
) -> list[tuple[str, float, float]]:
    """(query id, before, after) of every evaluated query, worst change first."""
    rows = [(qid, report.before[qid][metric], report.after[qid][metric]) for qid in report.latency_s]
    return sorted(rows, key=lambda r: (r[2] - r[1], r[0]))


def plot_report(report: EvaluationReport, path: str | Path | None = None) -> Figure:
    """Per-query nDCG@10 before and after (worst change first) beside the metric table.

    Each query is one column: a grey dot before, a blue dot after, joined by a green (better) or red
    (worse) line. Saved to ``path`` when given, PNG or SVG by its suffix.
    """
    fmt = plot_format(path) if path is not None else None
    require_matplotlib()
    from matplotlib.figure import Figure

    rows = per_query_deltas(report)
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax, table_ax = fig.subplots(1, 2, width_ratios=[3, 1.35])
    ax.set_label(PER_QUERY_AXES)
    table_ax.set_label(TABLE_AXES)

    x = list(range(len(rows)))
    before = [b for _, b, _ in rows]
    after = [a for _, _, a in rows]
    for i, b, a in zip(x, before, after, strict=True):
        if a != b:
            ax.plot([i, i], [b, a], color=UP if a > b else DOWN, linewidth=1.5, alpha=0.8)
    source = Path(report.first_stage).name if "/" in report.first_stage else report.first_stage
    ax.scatter(x, before, color=BEFORE, s=22, zorder=3, label=f"first stage ({source})")
    ax.scatter(x, after, color=AFTER, s=22, zorder=3, label=f"reranked top-{report.top_n}")
    ax.set_xlim(-0.8, max(len(rows), 1) - 0.2)
    ax.set_ylim(-0.03, 1.12)
    ax.set_xlabel("query, by change in nDCG@10 (worst first)")
    ax.set_ylabel("nDCG@10")
    if len(rows) <= 30:
        ax.set_xticks(x, [qid for qid, _, _ in rows], rotation=60, ha="right", fontsize=7)
    else:
        ax.set_xticks([])
    better = sum(a > b for _, b, a in rows)
    worse = sum(a < b for _, b, a in rows)
    same = len(rows) - better - worse
    ax.set_title(f"{report.dataset}: {len(rows)} queries, {better} better, {worse} worse, {same} same")
    ax.legend(loc="upper left", ncol=2, fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)

    _draw_table(table_ax, report)
    if path is not None:
        fig.savefig(path, format=fmt, dpi=110)
    return fig


def _draw_table(ax: Any, report: EvaluationReport) -> None:
    metrics = report.metrics
    cells = [
        [
            LABELS[m].strip(),
            f"{metrics['before'][m]:.3f}",
            f"{metrics['after'][m]:.3f}",
            f"{metrics['delta'][m]:+.3f}",
        ]
        for m in METRICS
    ]
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=["metric", "before", "after", "delta"], loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)
    lat = report.latency_ms
    provider = report.reranker.get("provider", "?")
    model = (report.reranker.get("config") or {}).get("model") or "default model"
    ax.set_title(f"{provider} ({model})", fontsize=9)
    ax.text(
        0.5,
        0.18,
        f"latency per query: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms\n"
        f"failed queries: {len(report.failed)}",
        ha="center",
        va="top",
        fontsize=8,
        transform=ax.transAxes,
    )


def save_plot(report: EvaluationReport, path: str | Path) -> Path:
    """Draw the report and write it to ``path`` (PNG or SVG by suffix)."""
    plot_report(report, path)
    return Path(path)


def write_html(report: EvaluationReport, path: str | Path) -> Path:
    """One self-contained HTML page: the plot (inline SVG), the metric table and every query's nDCG@10."""
    fig = plot_report(report)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    metrics = report.metrics
    metric_rows = "".join(
        f"<tr><td>{html.escape(LABELS[m].strip())}</td><td>{metrics['before'][m]:.3f}</td>"
        f"<td>{metrics['after'][m]:.3f}</td><td>{metrics['delta'][m]:+.3f}</td></tr>"
        for m in METRICS
    )
    query_rows = "".join(
        f"<tr><td>{html.escape(qid)}</td><td>{b:.3f}</td><td>{a:.3f}</td><td>{a - b:+.3f}</td></tr>"
        for qid, b, a in per_query_deltas(report)
    )
    head = "<tr><th>{}</th><th>before</th><th>after</th><th>delta</th></tr>"
    summary = html.escape(report.format_table())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rerank-layer eval: {html.escape(report.dataset)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body>
<h1>{html.escape(report.dataset)}</h1>
{svg}
<h2>Metrics</h2>
<table>{head.format("metric")}{metric_rows}</table>
<pre>{summary}</pre>
<h2>nDCG@10 per query (worst change first)</h2>
<table>{head.format("query")}{query_rows}</table>
</body></html>
"""
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
