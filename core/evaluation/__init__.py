"""Measure a reranker on a BEIR-layout collection: NDCG/MRR/recall before and after, latency, throughput."""

from core.evaluation.beir import BeirDataset, Qrels, Run, load_beir, read_qrels, read_run, write_run
from core.evaluation.bm25 import bm25_run
from core.evaluation.metrics import GAIN, METRICS, evaluate_run, mean_metrics
from core.evaluation.report import EvaluationReport
from core.evaluation.runner import RerankedRun, evaluate, rerank_run

__all__ = [
    "GAIN",
    "METRICS",
    "BeirDataset",
    "EvaluationReport",
    "Qrels",
    "RerankedRun",
    "Run",
    "bm25_run",
    "evaluate",
    "evaluate_run",
    "load_beir",
    "mean_metrics",
    "read_qrels",
    "read_run",
    "rerank_run",
    "write_run",
]
