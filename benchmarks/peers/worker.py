"""One reranking system in its own long-lived process, fed over stdin/stdout (JSON lines).

    python benchmarks/peers/worker.py SYSTEM MODEL_FOLDER PEER_FOLDER

``bench_local.py`` starts one worker per system, each with its own interpreter (a peer that needs
other package versions runs from its virtual environment under ``/work/bench-venvs``), and sends
every worker the same requests in turn. Only the standard library and numpy are imported at the
top: the system's own packages are imported when it is built.

Requests, one JSON object a line:
- ``{"op": "rank", "query": ..., "texts": [...], "scores": false}``: rerank once; the reply holds
  ``seconds`` (measured here, around the system's own call only) and the scores if asked for;
- ``{"op": "memory"}``: ``peak_rss_mb`` (VmHWM: this process's peak) and ``rss_mb`` now;
- ``{"op": "quit"}``.
The first line written is ``{"ready": ..., "load_seconds": ...}`` once the system is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

#: A loaded system: (query, texts) -> one score per text, in input order.
Score = Callable[[str, list[str]], list[float]]
#: A loaded system's timed call (what a user of it calls) and its scorer.
System = tuple[Callable[[str, list[str]], object], Score]

#: rerank-layer's configurations: name -> huggingface provider config (on top of the model path).
OURS: dict[str, dict[str, object]] = {
    "rerank-layer fastest": {"backend": "openvino", "dtype": "int8", "batch_size": 16},
    # No option: with the local extra (which carries OpenVINO and NNCF) backend "auto" resolves
    # to OpenVINO int8 on a CPU with VNNI, at the default batch size 32.
    "rerank-layer default": {},
    # The default where OpenVINO is not installed (or the CPU lacks VNNI): bf16 where native.
    "rerank-layer torch bf16": {"backend": "torch"},
    "rerank-layer onnx int8": {"backend": "onnx", "dtype": "int8", "batch_size": 16},
    "rerank-layer float32": {"dtype": "float32"},
}


def ours(model: Path, config: dict[str, object]) -> System:
    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo))
    from core import create_reranker

    reranker = create_reranker({"provider": "huggingface", "config": {"model": str(model), **config}})
    reranker.warmup()
    return (
        lambda query, texts: reranker.rerank(query, [{"text": t} for t in texts]),
        lambda query, texts: [float(s) for s in reranker.score(query, texts)],
    )


def st_cross_encoder(
    model: Path, backend: str = "torch", file_name: str | None = None, **kw: object
) -> System:
    from sentence_transformers import CrossEncoder

    model_kwargs: dict[str, object] = dict(kw)
    if file_name is not None:
        model_kwargs["file_name"] = file_name
    if backend == "onnx":
        model_kwargs.setdefault("provider", "CPUExecutionProvider")
    encoder = CrossEncoder(str(model), device="cpu", backend=backend, model_kwargs=model_kwargs)

    def score(query: str, texts: list[str]) -> list[float]:
        return [float(s) for s in encoder.predict([(query, t) for t in texts])]

    return score, score


def st_torch_bf16(model: Path) -> System:
    import torch

    return st_cross_encoder(model, dtype=torch.bfloat16)


def fastembed(folder: Path) -> System:
    from fastembed.common.model_description import ModelSource
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    name = f"rerank-layer-bench/{folder.name}"
    TextCrossEncoder.add_custom_model(name, sources=ModelSource(hf=name), model_file="model.onnx")
    encoder = TextCrossEncoder(name, specific_model_path=str(folder), threads=None)

    def score(query: str, texts: list[str]) -> list[float]:
        return [float(s) for s in encoder.rerank(query, texts)]

    return score, score


def langchain(model: Path) -> System:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder
    from langchain_core.documents import Document

    encoder = HuggingFaceCrossEncoder(model_name=str(model), model_kwargs={"device": "cpu"})
    compressor = CrossEncoderReranker(model=encoder, top_n=10)
    return (
        lambda query, texts: compressor.compress_documents([Document(page_content=t) for t in texts], query),
        lambda query, texts: [float(s) for s in encoder.score([(query, t) for t in texts])],
    )


def llamaindex(model: Path) -> System:
    from llama_index.core.postprocessor import SentenceTransformerRerank
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    post = SentenceTransformerRerank(model=str(model), top_n=10, device="cpu")

    def rank(query: str, texts: list[str]) -> object:
        nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i)), score=0.0) for i, t in enumerate(texts)]
        return post.postprocess_nodes(nodes, query_bundle=QueryBundle(query))

    def score(query: str, texts: list[str]) -> list[float]:
        post.top_n = len(texts)
        try:
            ranked = rank(query, texts)
        finally:
            post.top_n = 10
        by_id = {n.node.node_id: float(n.score or 0.0) for n in ranked}  # type: ignore[attr-defined]
        return [by_id[str(i)] for i in range(len(texts))]

    return rank, score


def build(name: str, model: Path, peers: Path) -> System:
    """The system called ``name`` (see ``bench_local.SYSTEMS``), loaded."""
    if name in OURS:
        return ours(model, OURS[name])
    if name.startswith("rerank-layer {"):  # a configuration given inline: "rerank-layer {json}"
        return ours(model, json.loads(name.removeprefix("rerank-layer ")))
    builders: dict[str, Callable[[], System]] = {
        "ST ONNX int8 (avx512_vnni)": lambda: st_cross_encoder(
            peers / "st-onnx", "onnx", "onnx/model_qint8_avx512_vnni.onnx"
        ),
        "ST ONNX float32": lambda: st_cross_encoder(peers / "st-onnx", "onnx", "onnx/model.onnx"),
        "ST torch bf16": lambda: st_torch_bf16(model),
        "ST torch float32": lambda: st_cross_encoder(model),
        "fastembed int8 (512 tokens)": lambda: fastembed(peers / "fastembed-int8"),
        "fastembed float32 (512 tokens)": lambda: fastembed(peers / "fastembed-float32"),
        "LangChain CrossEncoderReranker": lambda: langchain(model),
        "LlamaIndex SentenceTransformerRerank": lambda: llamaindex(model),
    }
    return builders[name]()


def peak_rss_mb() -> dict[str, float]:
    figures = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("VmHWM:", "VmRSS:")):
                figures["peak_rss_mb" if line.startswith("VmHWM") else "rss_mb"] = int(line.split()[1]) / 1024
    return figures


def serve(name: str, model: Path, peers: Path) -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the system prints must not break the protocol
    start = time.perf_counter()
    rank, score = build(name, model, peers)
    out.write(
        json.dumps({"ready": name, "load_seconds": time.perf_counter() - start, **peak_rss_mb()}) + "\n"
    )
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        if request["op"] == "memory":
            reply: dict[str, object] = peak_rss_mb()
        else:
            call = score if request.get("scores") else rank
            begin = time.perf_counter()
            result = call(request["query"], request["texts"])
            reply = {"seconds": time.perf_counter() - begin}
            if request.get("scores"):
                reply["scores"] = result
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
