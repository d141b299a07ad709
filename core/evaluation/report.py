"""The outcome of an evaluation: metrics before/after, latency, throughput; as JSON, TREC runs and text."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.evaluation.beir import Run, write_run
from core.evaluation.metrics import GAIN, METRICS, mean_metrics

#: How each metric is labelled in the text table.
LABELS = {
    "ndcg@10": "nDCG@10",
    "ndcg@10_exp": "  [exp gain]",
    "mrr@10": "MRR@10",
    "recall@10": "Recall@10",
    "recall@100": "Recall@100",
}


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1-99), interpolated linearly as numpy's default (NaN for no values)."""
    if not 1 <= q <= 99:
        raise ValueError(f"q must be within 1..99, got {q}")
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class EvaluationReport:
    """Metrics of the first-stage and reranked runs, per query and averaged, with latency figures."""

    dataset: str
    first_stage: str
    reranker: dict[str, Any]
    top_n: int
    relevance_level: int
    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    latency_s: dict[str, float]
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0
    documents: int = 0
    first_stage_run: Run = field(default_factory=dict, repr=False)
    reranked_run: Run = field(default_factory=dict, repr=False)
    #: The qrels split evaluated (None when a qrels file was named) and the file read.
    split: str | None = None
    qrels_file: str | None = None

    @property
    def queries(self) -> int:
        """How many queries were reranked and evaluated."""
        return len(self.latency_s)

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Mean metrics: ``{"before": ..., "after": ..., "delta": ...}``."""
        before, after = mean_metrics(self.before), mean_metrics(self.after)
        return {"before": before, "after": after, "delta": {m: after[m] - before[m] for m in METRICS}}

    @property
    def latency_ms(self) -> dict[str, float]:
        """Per-query reranking latency in milliseconds: p50, p95, mean, max."""
        values = sorted(v * 1000 for v in self.latency_s.values())
        if not values:
            return {"p50": math.nan, "p95": math.nan, "mean": math.nan, "max": math.nan}
        return {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "mean": statistics.fmean(values),
            "max": values[-1],
        }

    @property
    def throughput(self) -> dict[str, float]:
        """Queries and documents reranked per second of wall time."""
        if self.wall_s <= 0:
            return {"queries_per_s": math.nan, "documents_per_s": math.nan}
        return {"queries_per_s": self.queries / self.wall_s, "documents_per_s": self.documents / self.wall_s}

    def to_dict(self, per_query: bool = True) -> dict[str, Any]:
        """A JSON-ready summary (and, by default, every query's metrics and latency)."""
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "split": self.split,
            "qrels": self.qrels_file,
            "queries": self.queries,
            "top_n": self.top_n,
            "first_stage": self.first_stage,
            "reranker": self.reranker,
            "gain": GAIN,
            "relevance_level": self.relevance_level,
            "metrics": self.metrics,
            "latency_ms": self.latency_ms,
            "throughput": self.throughput,
            "wall_s": self.wall_s,
            "documents": self.documents,
            "failed_queries": dict(self.failed),
        }
        if per_query:
            out["per_query"] = {
                qid: {
                    "before": self.before.get(qid, {}),
                    "after": self.after.get(qid, {}),
                    "latency_ms": self.latency_s[qid] * 1000,
                    "failed": self.failed.get(qid),
                }
                for qid in self.latency_s
            }
        return out

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``report.json``, ``reranked.run`` and ``first_stage.run`` into ``folder``."""
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        report = root / "report.json"
        report.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return {
            "report": report,
            "reranked_run": write_run(root / "reranked.run", self.reranked_run, tag="reranked"),
            "first_stage_run": write_run(root / "first_stage.run", self.first_stage_run, tag="first_stage"),
        }

    def format_table(self) -> str:
        """A plain-text summary a person can read in a terminal."""
        provider = self.reranker.get("provider", "?")
        model = (self.reranker.get("config") or {}).get("model") or "its default model"
        m = self.metrics
        judged = f"split {self.split}" if self.split is not None else "judgements"
        lines = [
            f"{self.dataset}: {self.queries} queries; top-{self.top_n} of {self.first_stage} "
            f"reranked by {provider} ({model})",
            f"{judged} from {self.qrels_file}" if self.qrels_file else f"{judged}: given in memory",
            "",
            f"{'metric':<13}{'before':>8}{'after':>8}{'delta':>9}",
        ]
        for name in METRICS:
            b, a, d = m["before"][name], m["after"][name], m["delta"][name]
            lines.append(f"{LABELS[name]:<13}{b:8.3f}{a:8.3f}{d:+9.3f}")
        lat, thr = self.latency_ms, self.throughput
        lines += [
            "",
            f"latency per query: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, max {lat['max']:.1f} ms",
            f"throughput: {thr['queries_per_s']:.2f} queries/s, {thr['documents_per_s']:.1f} documents/s "
            f"({self.wall_s:.1f} s)",
            f"failed queries (first-stage order kept): {len(self.failed)}",
            "nDCG gain: linear (trec_eval); [exp gain] row: 2^rel - 1. "
            f"Relevant for MRR/recall: grade >= {self.relevance_level}.",
        ]
        return "\n".join(lines)
