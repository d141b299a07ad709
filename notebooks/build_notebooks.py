"""Write the example notebooks, outputs stripped: ``python notebooks/build_notebooks.py``.

The cells live here as plain text so that they stay reviewable; edit this file, run it and commit
the .ipynb files it writes. The notebooks run offline, with no API key.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str]  # ("md" | "code", source)


def md(text: str) -> Cell:
    """A markdown cell."""
    return ("md", dedent(text).strip())


def code(text: str) -> Cell:
    """A code cell."""
    return ("code", dedent(text).strip())


CORPUS = code("""
    # A small corpus: a few documents answer the question, others only share its words.
    TEXTS = [
        "Solar panels turn sunlight into electricity using photovoltaic cells.",
        "The energy drink market grew by twelve percent last year.",
        "Photosynthesis lets plants use light energy to make glucose from water and carbon dioxide.",
        "Houseplants need indirect sunlight and weekly watering to thrive.",
        "Chlorophyll in leaves absorbs light, powering the reactions that store energy as sugar.",
        "The power plant will turn to natural gas to produce energy next year.",
        "Sunlight heats the oceans and drives the weather.",
        "In the Calvin cycle, plants fix carbon dioxide into sugars with the ATP that light reactions make.",
        "Bananas are a good source of energy for athletes.",
        "Plants turn toward the sun, a growth response called phototropism.",
    ]
    QUERY = "How do plants turn sunlight into energy?"
    # The reranker: the all-MiniLM-L6-v2 model shipped with rerank-layer (offline, CPU is fine).
    SPEC = {"provider": "sentence_transformer", "config": {"model": "embedded"}}
""")

SWAP_PROVIDER = md("""
    ## Swap the provider, keep the code

    Any spec that `create_reranker` accepts works here, with the keys of Mem0's reranker config:

    ```python
    {"provider": "cohere", "config": {"model": "rerank-v3.5"}}            # CO_API_KEY from the environment
    {"provider": "zero_entropy", "config": {"model": "zerank-1-small"}}   # ZEROENTROPY_API_KEY
    {"provider": "huggingface", "config": {"model": "BAAI/bge-reranker-base"}}
    ```

    Whether a reranker is worth its latency on *your* data: see `evaluate.ipynb`.
""")

LANGCHAIN: list[Cell] = [
    md("""
        # LangChain quickstart: rerank what a retriever returns

        A keyword retriever (BM25) ranks documents by shared words, so documents that merely mention
        *plants*, *turn* or *sunlight* can outrank the one that answers the question. `RerankCompressor`
        puts a reranker behind LangChain's `ContextualCompressionRetriever`: it rescores the retrieved
        documents against the query and keeps the best `top_n`. Everything below runs offline, with no
        API key.
    """),
    code("""
        import warnings

        # BM25Retriever lives in langchain-community, which warns about its future on import;
        # tqdm (imported by sentence-transformers) warns when ipywidgets is missing.
        warnings.filterwarnings("ignore", message=".*langchain-community.*|IProgress not found")

        from langchain_classic.retrievers import ContextualCompressionRetriever
        from langchain_community.retrievers import BM25Retriever
        from langchain_core.documents import Document

        from langchain_rerankers import RerankCompressor
    """),
    CORPUS,
    md("## Before: the retriever alone"),
    code("""
        documents = [Document(page_content=t, id=f"doc-{i}") for i, t in enumerate(TEXTS)]
        retriever = BM25Retriever.from_documents(documents, k=6)


        def show(docs):
            for rank, doc in enumerate(docs, 1):
                score = doc.metadata.get("relevance_score")
                shown = "  -  " if score is None else f"{score:.3f}"
                print(f"{rank}. [{shown}] {doc.id}: {doc.page_content}")


        before = retriever.invoke(QUERY)
        show(before)
    """),
    md("""
        ## After: the same retriever with a reranker

        The compressor scores each (query, document) pair and writes the score to
        `metadata["relevance_score"]`; `top_n=3` keeps the three best.
    """),
    code("""
        compressor = RerankCompressor(reranker=SPEC, top_n=3)
        reranking_retriever = ContextualCompressionRetriever(
            base_compressor=compressor, base_retriever=retriever
        )

        after = reranking_retriever.invoke(QUERY)
        show(after)
    """),
    code("""
        print("best before:", before[0].id, "->", before[0].page_content)
        print("best after: ", after[0].id, "->", after[0].page_content)
    """),
    md("""
        ## In an LCEL chain

        The compressor is also a Runnable that takes `{"query", "documents"}`, so it slots into a chain
        after any retriever.
    """),
    code("""
        from langchain_core.runnables import RunnableLambda

        retrieve = RunnableLambda(lambda q: {"query": q, "documents": retriever.invoke(q)})
        chain = retrieve | compressor
        show(chain.invoke(QUERY))
    """),
    SWAP_PROVIDER,
]

LLAMAINDEX: list[Cell] = [
    md("""
        # LlamaIndex quickstart: rerank a query engine's nodes

        A keyword index returns every node that shares a word with the question, in no useful order.
        `RerankPostprocessor` is a node postprocessor: added to a query engine, it rescores the retrieved
        nodes against the query and keeps the best `top_n`. Everything below runs offline: the index
        extracts keywords with a regex, and `MockLLM` stands in for the LLM (the engines use
        `response_mode="no_text"`, so we look at the retrieved sources).
    """),
    code("""
        import warnings

        warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, without ipywidgets

        from llama_index.core import Document, Settings, SimpleKeywordTableIndex
        from llama_index.core.llms import MockLLM

        from llamaindex_rerankers import RerankPostprocessor

        Settings.llm = MockLLM()  # no API key; nothing below asks it to write text
    """),
    CORPUS,
    md("## Before: the query engine alone"),
    code("""
        documents = [Document(text=t, id_=f"doc-{i}") for i, t in enumerate(TEXTS)]
        index = SimpleKeywordTableIndex.from_documents(documents)


        def show(nodes):
            for rank, node in enumerate(nodes, 1):
                shown = "  -  " if node.score is None else f"{node.score:.3f}"
                print(f"{rank}. [{shown}] {node.node.ref_doc_id}: {node.get_content()}")


        engine = index.as_query_engine(retriever_mode="simple", response_mode="no_text")
        before = engine.query(QUERY).source_nodes
        show(before)
    """),
    md("""
        ## After: the same engine with a reranker

        `RerankPostprocessor(SPEC, top_n=3)` takes the core's spec dict (or a built reranker).
    """),
    code("""
        reranker = RerankPostprocessor(SPEC, top_n=3)
        reranking_engine = index.as_query_engine(
            retriever_mode="simple", response_mode="no_text", node_postprocessors=[reranker]
        )
        after = reranking_engine.query(QUERY).source_nodes
        show(after)
    """),
    code("""
        print("best after:", after[0].node.ref_doc_id, "->", after[0].get_content())
    """),
    md("""
        ## On retrieved nodes directly

        A postprocessor also works outside a query engine, on any list of `NodeWithScore`.
    """),
    code("""
        nodes = index.as_retriever(retriever_mode="simple").retrieve(QUERY)
        show(reranker.postprocess_nodes(nodes, query_str=QUERY))
    """),
    SWAP_PROVIDER,
]

EVALUATE: list[Cell] = [
    md("""
        # Is the reranker worth its latency? Measure it on real data

        A reranker should earn its place twice: in ranking quality (NDCG@10, MRR@10, recall) and in the
        time it adds per query. This notebook measures both on a BEIR-layout collection: the first stage
        (a BM25 run), the same candidates reranked, and how latency grows with the number of candidates
        reranked. The command line does the same in one line:

        ```
        rerank-layer eval ../shared/data/scifact --run ../shared/data/scifact/bm25_top100.run -o results/
        ```

        nDCG uses trec_eval's linear gain (the grade itself); `[exp gain]` / `ndcg@10_exp` use exponential
        gain `2^grade - 1`. Metrics are computed by `pytrec_eval`.
    """),
    code("""
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

        # The real collection when this checkout sits next to shared/data, else the toy one in data/toy.
        candidates = [Path("../../shared/data") / DATASET, Path("../shared/data") / DATASET]
        DATA = next((p for p in candidates if (p / "corpus.jsonl").is_file()), Path("data/toy"))
        print("collection:", DATA.resolve())
    """),
    md("""
        ## Before and after

        `evaluate` loads the collection, takes the first-stage run (the collection's `bm25_top100.run`
        when it has one, else BM25 built on the spot), reranks the top `TOP_N` of each query and
        evaluates both runs on the same queries.
    """),
    code("""
        data = load_beir(DATA)
        run_file = DATA / "bm25_top100.run"  # without one, evaluate builds BM25 top-100
        run = run_file if run_file.is_file() else None
        report = evaluate(data, SPEC, run=run, top_n=TOP_N, max_queries=N_QUERIES, progress=False)
        print(report.format_table())
        saved = report.save(OUTPUT)  # report.json, reranked.run, first_stage.run
    """),
    md("""
        ## Latency against candidate-list size

        Reranking more candidates can find relevant documents the first stage ranked low, and costs time
        roughly in proportion. Each size reranks the same queries.
    """),
    code("""
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
    """),
    md("## The picture"),
    code("""
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
    """),
    md("""
        ## Per query

        The mean hides the spread: the queries the reranker helped most and hurt most.
    """),
    code("""
        deltas = {q: report.after[q]["ndcg@10"] - report.before[q]["ndcg@10"] for q in report.after}
        ranked = sorted(deltas, key=deltas.get)
        for q in [*ranked[:3], *ranked[-3:]]:
            print(f"{deltas[q]:+.3f}  {q}: {data.queries[q][:90]}")
    """),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "langchain_quickstart.ipynb": LANGCHAIN,
    "llamaindex_quickstart.ipynb": LLAMAINDEX,
    "evaluate.ipynb": EVALUATE,
}


def build(name: str, cells: list[Cell]) -> nbformat.NotebookNode:
    """A notebook of ``cells`` with stable cell ids, so that rebuilding changes nothing."""
    notebook = new_notebook(
        cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells],
        metadata={
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    )
    prefix = name.split("_")[0].removesuffix(".ipynb")
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{prefix}-{i:02d}"
    nbformat.validate(notebook)
    return notebook


def main() -> None:
    """Write every notebook next to this file."""
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
