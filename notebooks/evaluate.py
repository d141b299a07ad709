# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Is the reranker worth its latency? Measure it on real data
#
# A reranker should earn its place twice: in ranking quality (NDCG@10, MRR@10, recall) and in the
# time it adds per query. This notebook measures both on a BEIR-layout collection: the first stage
# (a BM25 run), the same candidates reranked, and how latency grows with the number of candidates
# reranked. The command line does the same in one line:
#
# ```
# rerank-layer eval ../shared/data/scifact --run ../shared/data/scifact/bm25_top100.run -o results/
# ```
#
# nDCG uses trec_eval's linear gain (the grade itself); `[exp gain]` / `ndcg@10_exp` use exponential
# gain `2^grade - 1`. Metrics are computed by `pytrec_eval`.

# %%
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; the figure is shown below from the file it is saved to
import matplotlib.pyplot as plt
from IPython.display import Image, display

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, without ipywidgets

from core.evaluation import evaluate, evaluate_run, load_beir, mean_metrics, rerank_run
from core.evaluation.report import percentile

# Settings: change them here, or set the environment variables.
DATASET = os.environ.get("RERANK_EVAL_DATASET", "trec-dl19-subset")  # a folder of shared/data
N_QUERIES = int(os.environ.get("RERANK_EVAL_QUERIES", "20"))  # the first N judged queries
TOP_N = int(os.environ.get("RERANK_EVAL_TOP_N", "30"))  # candidates reranked per query
SIZES = [n for n in (5, 10, 20, 30, 50, 100) if n <= TOP_N]  # candidate-list sizes to time
OUTPUT = Path(os.environ.get("RERANK_EVAL_OUTPUT", "results"))
SPEC = {"provider": "sentence_transformer", "config": {"model": "embedded"}}  # any reranker spec

# RERANK_EVAL_DATA names a BEIR folder; else the real collection when this checkout sits next to
# shared/data; else the toy one in data/toy.
candidates = [Path("../../shared/data") / DATASET, Path("../shared/data") / DATASET]
found = next((p for p in candidates if (p / "corpus.jsonl").is_file()), Path("data/toy"))
DATA = Path(os.environ.get("RERANK_EVAL_DATA", found))

# %% [markdown]
# ## Before and after
#
# `evaluate` loads the collection, takes the first-stage run (the collection's `bm25_top100.run`
# when it has one, else BM25 built on the spot), reranks the top `TOP_N` of each query and
# evaluates both runs on the same queries.

# %%
data = load_beir(DATA)
print(f"collection: {data.name}, {len(data.corpus)} documents, {len(data.qrels)} judged queries")
run_file = DATA / "bm25_top100.run"  # without one, evaluate builds BM25 top-100
run = run_file if run_file.is_file() else None
report = evaluate(data, SPEC, run=run, top_n=TOP_N, max_queries=N_QUERIES, progress=False)
print(report.format_table())
saved = report.save(OUTPUT)  # report.json, reranked.run, first_stage.run

# %% [markdown]
# ## Latency against candidate-list size
#
# Reranking more candidates can find relevant documents the first stage ranked low, and costs time
# roughly in proportion. Each size reranks the same queries.
#
# The outputs committed with this notebook were produced on a shared 2-core machine running other jobs
# at the same time, so their latencies are high and noisy: rerun it on yours
# (`python notebooks/execute.py evaluate`) for figures that mean something there.

# %%
first_stage = report.first_stage_run  # the candidates of the evaluated queries
before_ndcg = report.metrics["before"]["ndcg@10"]
by_size = {}
for n in SIZES:
    reranked = rerank_run(SPEC, data, first_stage, top_n=n)
    latency_ms = sorted(1000 * s for s in reranked.latency_s.values())
    by_size[n] = {
        "p50": percentile(latency_ms, 50),
        "p95": percentile(latency_ms, 95),
        "ndcg@10": mean_metrics(evaluate_run(data.qrels, reranked.run))["ndcg@10"],
    }
    row = by_size[n]
    print(f"top-{n:>3}: p50 {row['p50']:7.1f} ms   p95 {row['p95']:7.1f} ms   ", end="")
    print(f"nDCG@10 {row['ndcg@10']:.3f}")

# %% [markdown]
# ## The picture

# %%
metrics = ["ndcg@10", "mrr@10", "recall@10"]
names = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "recall@10": "Recall@10"}
before = [report.metrics["before"][m] for m in metrics]
after = [report.metrics["after"][m] for m in metrics]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
x = range(len(metrics))
bars_b = ax1.bar([i - 0.2 for i in x], before, 0.4, label="first stage (BM25)", color="#9aa5b1")
bars_a = ax1.bar([i + 0.2 for i in x], after, 0.4, label=f"reranked top-{TOP_N}", color="#2f6fde")
ax1.bar_label(bars_b, fmt="%.3f", fontsize=9)
ax1.bar_label(bars_a, fmt="%.3f", fontsize=9)
ax1.set_xticks(list(x), [names[m] for m in metrics])
ax1.set_ylim(0, 1.25)
ax1.set_ylabel("mean over queries")
ax1.set_title(f"{data.name}: {report.queries} queries, before vs after")
ax1.legend(loc="upper left", ncol=2, frameon=False)

sizes = list(by_size)
blue, orange, grey = "#2f6fde", "#e07b00", "#9aa5b1"
ax2.plot(sizes, [by_size[n]["p50"] for n in sizes], "o-", color=blue, label="p50 latency")
ax2.plot(sizes, [by_size[n]["p95"] for n in sizes], "s--", color=blue, alpha=0.6, label="p95 latency")
ax2.set_xticks(sizes)
ax2.set_xlabel("candidates reranked per query")
ax2.set_ylabel("latency per query (ms)")
ax2.set_ylim(bottom=0)
ax3 = ax2.twinx()
ax3.plot(sizes, [by_size[n]["ndcg@10"] for n in sizes], "^-", color=orange, label="nDCG@10 reranked")
ax3.axhline(before_ndcg, color=grey, linestyle=":", label="nDCG@10 first stage")
ax3.set_ylabel("nDCG@10")
ax3.set_ylim(0, 1)
lines = ax2.get_legend_handles_labels()[0] + ax3.get_legend_handles_labels()[0]
ax2.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=9)
ax2.set_title("latency and quality vs candidate-list size")
fig.tight_layout()

figure = OUTPUT / "evaluate.png"
fig.savefig(figure, dpi=120)
plt.close(fig)
display(Image(filename=str(figure)))
print("saved", figure)

# %% [markdown]
# ## Per query
#
# The mean hides the spread. Each column is one query: its nDCG@10 before (grey) and after (blue)
# reranking, worst change first, joined green where the reranker helped and red where it hurt.
# `rerank-layer eval DATA --plot per_query.png` draws the same figure (`--html` a page with it).

# %%
from core.evaluation.plot import plot_report

per_query = OUTPUT / "per_query.png"
plot_report(report, per_query)
display(Image(filename=str(per_query)))

# %% [markdown]
# The queries the reranker helped most and hurt most:

# %%
deltas = {q: report.after[q]["ndcg@10"] - report.before[q]["ndcg@10"] for q in report.after}
ranked = sorted(deltas, key=deltas.get)
for q in [*ranked[:3], *ranked[-3:]]:
    print(f"{deltas[q]:+.3f}  {q}: {data.queries[q][:90]}")
