"""LLM (causal-LM) reranking: rerank-layer's fast path against the Qwen3-Reranker model card's loop.

Run from the repository root, alone on the machine:

    flock /work/bench.lock .venv/bin/python benchmarks/bench_causal.py             # about 6 minutes
    flock /work/bench.lock .venv/bin/python benchmarks/bench_causal.py --float32   # and both in float32

Model: ``causal_inputs.build_model`` (Qwen3-Reranker-0.6B's shape, its first ``--layers`` layers,
random bf16 weights). Inputs: one DL19 query and 100 passages of 100-150 words.
Systems, each at the checkpoint's precision (bf16; with ``--float32`` also in float32), all with
batches of ``--batch-size`` pairs:
- rerank-layer: the ``huggingface`` provider (``dtype="auto"``, which is bf16 on this CPU, or
  ``"float32"``); pairs tokenised once, length-sorted, left-padded, the last position only;
- the model card's loop: ``format_instruction`` / ``process_inputs`` / ``compute_logits`` as the
  Qwen3-Reranker card writes them (``AutoModelForCausalLM.from_pretrained(path)``, which loads the
  checkpoint's bf16, full logits), run in input-order batches of the same size with right padding
  and the last real position read from the attention mask. (The card scores all pairs in one
  batch: 100 x 260 positions x 151,669 logits would need 8 GB in bf16.)
Speed: every system loaded and warmed up, then timed round-robin repetition by repetition; the
median is reported. Memory: each system alone in a fresh process, peak RSS (VmHWM) and the rise
during one call. Agreement: the largest |P(yes)| difference between rerank-layer and the card
at the same precision. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from benchmarks import causal_inputs, local_inputs  # noqa: E402
from benchmarks.bench_local import peak_of_process_mb, peak_rss, release_memory, rss_mb  # noqa: E402
from core import create_reranker  # noqa: E402

#: Returns P(yes) per text, in input order.
Rank = Callable[[str, list[str]], list[float]]

#: name -> (which, dtype): rerank-layer or the card's loop, at the checkpoint's precision (bf16)...
SYSTEMS = {
    "rerank-layer (auto: bf16 here)": ("ours", "auto"),
    "model card loop (checkpoint bf16)": ("card", None),
}
#: ... and, with --float32, both in float32.
FLOAT32_SYSTEMS = {
    "rerank-layer float32": ("ours", "float32"),
    "model card loop float32": ("card", "float32"),
}

# The Qwen3-Reranker model card's code (transformers usage), as written there.
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
MAX_LENGTH = 8192


def format_instruction(instruction: str | None, query: str, doc: str) -> str:
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def card_loop(model_path: Path, dtype: str | None, batch_size: int) -> Rank:
    """The card's loop over input-order batches: full logits, right padding, last real position."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)  # padding_side "right"
    kwargs = {"dtype": getattr(torch, dtype)} if dtype else {}
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)

    def process_inputs(pairs: list[str]) -> dict:
        inputs = tokenizer(
            pairs,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=MAX_LENGTH - len(prefix_tokens) - len(suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        return tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=MAX_LENGTH)

    @torch.no_grad()
    def compute_logits(inputs: dict) -> list[float]:
        logits = model(**inputs).logits
        last = logits[torch.arange(logits.shape[0]), inputs["attention_mask"].sum(dim=1) - 1]
        batch_scores = torch.stack([last[:, token_false_id], last[:, token_true_id]], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores.float(), dim=1)
        return batch_scores[:, 1].exp().tolist()

    def rank(query: str, docs: list[str]) -> list[float]:
        pairs = [format_instruction(None, query, doc) for doc in docs]
        scores: list[float] = []
        for start in range(0, len(pairs), batch_size):
            scores.extend(compute_logits(process_inputs(pairs[start : start + batch_size])))
        return scores

    return rank


def ours(model_path: Path, dtype: str, batch_size: int) -> Rank:
    config = {"model": str(model_path), "dtype": dtype, "batch_size": batch_size, "max_length": MAX_LENGTH}
    reranker = create_reranker({"provider": "huggingface", "config": config})
    reranker.warmup()

    def rank(query: str, docs: list[str]) -> list[float]:
        out = reranker.rerank(query, [{"i": i, "text": d} for i, d in enumerate(docs)])
        by_index = {row["i"]: row["rerank_score"] for row in out}
        return [by_index[i] for i in range(len(docs))]

    return rank


def build(name: str, model_path: Path, batch_size: int) -> Rank:
    kind, dtype = {**SYSTEMS, **FLOAT32_SYSTEMS}[name]
    return (
        ours(model_path, dtype or "auto", batch_size)
        if kind == "ours"
        else card_loop(model_path, dtype, batch_size)
    )


def memory_child(name: str, layers: int, candidates: int, batch_size: int) -> None:
    """In a fresh process: load one system, rank the candidates once, print memory figures (JSON)."""
    model_path = causal_inputs.build_model(layers)
    docs, query = local_inputs.passages(candidates), local_inputs.benchmark_query()
    start = rss_mb()
    rank = build(name, model_path, batch_size)
    rank(query, docs[:2])
    release_memory()
    with peak_rss() as memory:
        rank(query, docs)
    figures = {
        "peak_rss_mb": peak_of_process_mb(),
        "load_mb": memory["before"] - start,
        "call_mb": memory["peak"] - memory["before"],
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=4, help="first layers of the 28 kept (default 4)")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float32", action="store_true", help="also compare both in float32")
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child, args.layers, args.candidates, args.batch_size)

    import torch

    model_path = causal_inputs.build_model(args.layers)
    docs, query = local_inputs.passages(args.candidates), local_inputs.benchmark_query()
    print(f"model: {causal_inputs.shape(args.layers)}")
    threads = torch.get_num_threads()
    print(
        f"inputs: {args.candidates} passages (100-150 words), batch {args.batch_size}, {threads} threads",
    )
    chosen = {**SYSTEMS, **(FLOAT32_SYSTEMS if args.float32 else {})}
    systems = {name: build(name, model_path, args.batch_size) for name in chosen}
    for rank in systems.values():
        rank(query, docs[:2])  # warm-up
    scores: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for rep in range(args.repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            time.sleep(0.2)
            start = time.perf_counter()
            scores[name] = systems[name](query, docs)
            seconds[name].append(time.perf_counter() - start)
        print(f"  repetition {rep + 1} done", flush=True)

    rate = {name: args.candidates / statistics.median(s) for name, s in seconds.items()}
    memory = {}
    if not args.no_memory:
        for name in names:
            command = [sys.executable, __file__, "--memory-child", name, "--layers", str(args.layers)]
            command += ["--candidates", str(args.candidates), "--batch-size", str(args.batch_size)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            memory[name] = json.loads(done.stdout.strip().splitlines()[-1])

    print(f"\n{args.candidates} candidates, {args.repeats} runs each (median)")
    print(f"  {'system':36} {'pairs/s':>8} {'x card':>7} {'peak RSS MB':>12} {'call +MB':>9}")
    for name in names:
        card = "model card loop (checkpoint bf16)" if "float32" not in name else "model card loop float32"
        mem = memory.get(name, {})
        print(
            f"  {name:36} {rate[name]:8.1f} {rate[name] / rate[card]:7.2f}"
            f" {mem.get('peak_rss_mb', float('nan')):12.0f} {mem.get('call_mb', float('nan')):9.0f}"
        )
    for ours_name, card_name in zip(names[::2], names[1::2], strict=True):
        gap = max(abs(a - b) for a, b in zip(scores[ours_name], scores[card_name], strict=True))
        print(f"  max |P(yes) difference|, {ours_name} vs {card_name}: {gap:.2e}")
    if args.json:
        args.json.write_text(
            json.dumps({"pairs_per_s": rate, "seconds": seconds, "memory": memory}, indent=2)
        )


if __name__ == "__main__":
    main()
