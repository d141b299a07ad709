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
# # LlamaIndex quickstart: rerank a query engine's nodes
#
# A keyword index returns every node that shares a word with the question, in no useful order.
# `RerankPostprocessor` is a node postprocessor: added to a query engine, it rescores the retrieved
# nodes against the query and keeps the best `top_n`. Everything below runs offline: the index
# extracts keywords with a regex, and `MockLLM` stands in for the LLM (the engines use
# `response_mode="no_text"`, so we look at the retrieved sources).

# %%
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, without ipywidgets

from llama_index.core import Document, Settings, SimpleKeywordTableIndex
from llama_index.core.llms import MockLLM

from llamaindex_rerankers import RerankPostprocessor

Settings.llm = MockLLM()  # no API key; nothing below asks it to write text

# %%
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

# %% [markdown]
# ## Before: the query engine alone

# %%
documents = [Document(text=t, id_=f"doc-{i}") for i, t in enumerate(TEXTS)]
index = SimpleKeywordTableIndex.from_documents(documents)


def show(nodes):
    for rank, node in enumerate(nodes, 1):
        shown = "  -  " if node.score is None else f"{node.score:.3f}"
        print(f"{rank}. [{shown}] {node.node.ref_doc_id}: {node.get_content()}")


engine = index.as_query_engine(retriever_mode="simple", response_mode="no_text")
before = engine.query(QUERY).source_nodes
show(before)

# %% [markdown]
# ## After: the same engine with a reranker
#
# `RerankPostprocessor` takes the keywords of llama-index's own rerankers (`model`, `top_n`,
# `device`, `keep_retrieval_score`, ...); `model="embedded"` is the all-MiniLM-L6-v2 model shipped
# with rerank-layer (offline, CPU is fine). A spec dict, a spec string or a built reranker works too.

# %%
reranker = RerankPostprocessor(model="embedded", top_n=3, device="cpu")
reranking_engine = index.as_query_engine(
    retriever_mode="simple", response_mode="no_text", node_postprocessors=[reranker]
)
after = reranking_engine.query(QUERY).source_nodes
show(after)

# %%
print("best after:", after[0].node.ref_doc_id, "->", after[0].get_content())

# %% [markdown]
# ## On retrieved nodes directly
#
# A postprocessor also works outside a query engine, on any list of `NodeWithScore`.

# %%
nodes = index.as_retriever(retriever_mode="simple").retrieve(QUERY)
show(reranker.postprocess_nodes(nodes, query_str=QUERY))

# %% [markdown]
# ## Swap the provider, keep the code
#
# The keywords are the ones the peers take, and any spec that `create_reranker` accepts works too
# (a string `"provider:model"` or Mem0's config dict):
#
# ```python
# RerankPostprocessor(model="rerank-v3.5", api_key=KEY, top_n=3)            # Cohere (or CO_API_KEY)
# RerankPostprocessor(model="zerank-1-small", top_n=3)                      # ZeroEntropy, ZEROENTROPY_API_KEY
# RerankPostprocessor(model="huggingface:BAAI/bge-reranker-base", top_n=3)  # a Hub model (downloaded once)
# RerankPostprocessor(reranker={"provider": "cohere", "config": {"model": "rerank-v3.5"}}, top_n=3)
# ```
#
# Whether a reranker is worth its latency on *your* data: see `evaluate.ipynb`.
