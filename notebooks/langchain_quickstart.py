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
# # LangChain quickstart: rerank what a retriever returns
#
# A keyword retriever (BM25) ranks documents by shared words, so documents that merely mention
# *plants*, *turn* or *sunlight* can outrank the one that answers the question. `RerankCompressor`
# puts a reranker behind LangChain's `ContextualCompressionRetriever`: it rescores the retrieved
# documents against the query and keeps the best `top_n`. Everything below runs offline, with no
# API key.

# %%
import warnings

# BM25Retriever lives in langchain-community, which warns about its future on import;
# tqdm (imported by sentence-transformers) warns when ipywidgets is missing.
warnings.filterwarnings("ignore", message=".*langchain-community.*|IProgress not found")

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_community.retrievers import BM25Retriever
from langchain_core.documents import Document

from langchain_rerankers import RerankCompressor

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
# ## Before: the retriever alone

# %%
documents = [Document(page_content=t, id=f"doc-{i}") for i, t in enumerate(TEXTS)]
retriever = BM25Retriever.from_documents(documents, k=6)


def show(docs):
    for rank, doc in enumerate(docs, 1):
        score = doc.metadata.get("relevance_score")
        shown = "  -  " if score is None else f"{score:.3f}"
        print(f"{rank}. [{shown}] {doc.id}: {doc.page_content}")


before = retriever.invoke(QUERY)
show(before)

# %% [markdown]
# ## After: the same retriever with a reranker
#
# The compressor scores each (query, document) pair and writes the score to
# `metadata["relevance_score"]`; `top_n=3` keeps the three best. It takes the same keywords as
# LangChain's own rerankers; `model="embedded"` is the all-MiniLM-L6-v2 model shipped with
# rerank-layer (offline, CPU is fine).

# %%
compressor = RerankCompressor(provider="sentence_transformer", model="embedded", top_n=3)
reranking_retriever = ContextualCompressionRetriever(
    base_compressor=compressor, base_retriever=retriever
)

after = reranking_retriever.invoke(QUERY)
show(after)

# %%
print("best before:", before[0].id, "->", before[0].page_content)
print("best after: ", after[0].id, "->", after[0].page_content)

# %% [markdown]
# ## In an LCEL chain
#
# The compressor is also a Runnable that takes `{"query", "documents"}`, so it slots into a chain
# after any retriever.

# %%
from langchain_core.runnables import RunnableLambda

retrieve = RunnableLambda(lambda q: {"query": q, "documents": retriever.invoke(q)})
chain = retrieve | compressor
show(chain.invoke(QUERY))

# %% [markdown]
# ## Swap the provider, keep the code
#
# The keywords are the ones the peers take, and any spec that `create_reranker` accepts works too
# (a string `"provider:model"` or Mem0's config dict):
#
# ```python
# RerankCompressor(model="rerank-v3.5", cohere_api_key=KEY, top_n=3)        # Cohere (or CO_API_KEY)
# RerankCompressor(model="zerank-1-small", top_n=3)                         # ZeroEntropy, ZEROENTROPY_API_KEY
# RerankCompressor(model="huggingface:BAAI/bge-reranker-base", top_n=3)     # a Hub model (downloaded once)
# RerankCompressor(reranker={"provider": "cohere", "config": {"model": "rerank-v3.5"}}, top_n=3)
# ```
#
# Whether a reranker is worth its latency on *your* data: see `evaluate.ipynb`.
