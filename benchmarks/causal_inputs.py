"""The causal-LM benchmark's model: Qwen3-Reranker-0.6B's shape, its first layers, random weights.

Qwen3-Reranker-0.6B is a ``Qwen3ForCausalLM`` with hidden size 1024, 16 query and 8 key/value
heads of 128, MLP width 3072, 28 layers, a 151,669-token vocabulary tied to the input embedding,
bf16 weights. ``build_model(layers)`` keeps that shape with the first ``layers`` layers and random
weights (seeded), saved in bf16 as the real checkpoint is, under a folder named like it so the
``qwen3-reranker`` family applies. Its tokenizer is a byte-level BPE with Qwen's pre-tokenizer
pattern and ChatML tokens, trained on the DL19 passages (50,000 tokens: English MS MARCO text
comes out at about the token count Qwen's own tokenizer gives); vocabulary rows past it are
never used. The weights are random: rankings test speed and agreement, not relevance.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks import local_inputs

#: Where the BEIR data lives when not at ../shared/data beside the checkout (e.g. a git worktree).
DATA_ENV = "RERANK_LAYER_DATA"
if not local_inputs.DATA.is_dir() and os.environ.get(DATA_ENV):
    local_inputs.DATA = Path(os.environ[DATA_ENV]) / local_inputs.DATA.name

#: Qwen3-Reranker-0.6B's config.json, but for the layer count.
QWEN3_RERANKER_0_6B = {
    "vocab_size": 151669,
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000,
    "tie_word_embeddings": True,
}
TOKENIZER_VOCAB = 50_000
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
#: Bump when the way the model is built changes.
RECIPE = "v1"


def shape(layers: int) -> str:
    """The model's shape in words."""
    c = QWEN3_RERANKER_0_6B
    return (
        f"Qwen3ForCausalLM, the first {layers} of Qwen3-Reranker-0.6B's {c['num_hidden_layers']} layers: "
        f"hidden {c['hidden_size']}, {c['num_attention_heads']} query / {c['num_key_value_heads']} key-value "
        f"heads of {c['head_dim']}, MLP {c['intermediate_size']}, vocabulary {c['vocab_size']:,} (tied), bf16"
    )


def build_tokenizer(folder: Path) -> None:
    """Train and save the Qwen-style tokenizer (ChatML special tokens, <think> tokens)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    answers = ["yes no"] * 100  # the answer tokens must be single tokens, as in Qwen's vocabulary
    tokenizer.train_from_iterator([*local_inputs.corpus().values(), *answers], trainer)
    tokenizer.add_tokens(["<think>", "</think>"])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.save_pretrained(folder)


def build_model(layers: int, folder: Path | None = None) -> Path:
    """Save (once) the benchmark model with ``layers`` layers; returns its folder."""
    root = folder or Path(tempfile.gettempdir()) / "rerank-layer-bench"
    folder = root / f"Qwen3-Reranker-0.6B-first{layers}layers-{RECIPE}"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(folder)
    torch.manual_seed(0)
    config = Qwen3Config(
        **{**QWEN3_RERANKER_0_6B, "num_hidden_layers": layers},
        architectures=["Qwen3ForCausalLM"],
        dtype="bfloat16",
    )
    Qwen3ForCausalLM(config).to(torch.bfloat16).eval().save_pretrained(folder)
    return folder
