"""Tiny random causal-LM rerankers saved as folders that look like each family's checkpoint.

Qwen3 (Qwen3-Reranker, zerank), Qwen2 (mxbai-rerank-v2) and Gemma (bge-reranker-v2-gemma)
configs with two layers and a 32-wide hidden state, and tokenizers built with ``tokenizers``:
a byte-level BPE with Qwen's pre-tokenizer pattern and ChatML special tokens, and a
SentencePiece-style BPE that adds ``<bos>`` like Gemma's. Both hold the families' answer tokens
(yes / no / Yes / 1 / 0) as single tokens. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any

from tests.support.model_factory import QUERY, TEXTS, WORDS

#: Qwen2/Qwen3's pre-tokenizer split pattern (from their tokenizer.json).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)

#: The branches of Qwen3's chat template a (system, user) conversation with a generation prompt takes.
QWEN3_CHAT_TEMPLATE = (
    "{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)

_ANSWERS = "yes no Yes No 1 0"


def _corpus() -> list[str]:
    from core.local.families import FAMILIES

    static = [s for family in FAMILIES for s in family.segments] + [f.instruction or "" for f in FAMILIES]
    return [*static, QUERY, *TEXTS, " ".join(WORDS), *([_ANSWERS] * 50), "instruction: query: document:"]


def _save_tokenizer(tokenizer: Any, folder: Path, **special: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special)
    fast.save_pretrained(folder)
    for answer in _ANSWERS.split():
        assert len(fast(answer, add_special_tokens=False)["input_ids"]) == 1, answer
    return fast


def build_qwen_tokenizer(folder: Path, chat_template: str | None = None) -> Any:
    """A byte-level BPE with Qwen's split pattern, ChatML special tokens and <think> tokens."""
    from tokenizers import Tokenizer

    fast = _save_tokenizer(
        Tokenizer.from_str(_qwen_tokenizer_json()), folder, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    if chat_template is not None:
        fast.chat_template = chat_template
        fast.save_pretrained(folder)
    return fast


@functools.cache
def _qwen_tokenizer_json() -> str:
    """The Qwen-style tokenizer, trained once per process."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    tokenizer.add_tokens(["<think>", "</think>"])
    return str(tokenizer.to_str())


def build_gemma_tokenizer(folder: Path) -> Any:
    """A SentencePiece-style BPE (spaces as ▁) whose post-processor adds <bos>, as Gemma's does."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
    trainer = trainers.BpeTrainer(
        vocab_size=700, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"], show_progress=False
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos)]
    )
    return _save_tokenizer(
        tokenizer, folder, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def _small(config_class: Any, vocab_size: int, **extra: Any) -> Any:
    return config_class(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=512,
        initializer_range=0.2,
        tie_word_embeddings=True,
        **extra,
    )


def build_causal_lm(folder: Path, arch: str, seed: int = 0, chat_template: str | None = None) -> Path:
    """Save a random 2-layer ``arch`` ("qwen3", "qwen2" or "gemma") causal LM with its tokenizer."""
    import torch
    from transformers import (
        GemmaConfig,
        GemmaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    classes = {
        "qwen3": (Qwen3Config, Qwen3ForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "gemma": (GemmaConfig, GemmaForCausalLM),
    }
    config_class, model_class = classes[arch]
    folder.mkdir(parents=True, exist_ok=True)
    if arch == "gemma":
        tokenizer = build_gemma_tokenizer(folder)
    else:
        tokenizer = build_qwen_tokenizer(folder, chat_template)
    torch.manual_seed(seed)
    config = _small(config_class, len(tokenizer), architectures=[model_class.__name__])
    model_class(config).eval().save_pretrained(folder)
    return folder


def build_seq_cls_conversion(source: Path, folder: Path, yes: str, no: str, num_labels: int = 1) -> Path:
    """``source``'s causal LM as ``Qwen3ForSequenceClassification``: head row(s) from the LM head.

    One label: ``W[yes] - W[no]`` (the published Qwen3-Reranker seq-cls conversion), two labels:
    ``[W[no], W[yes]]``. The config keeps ``pad_token_id`` unset, as those conversions often do.
    """
    import torch
    from transformers import AutoTokenizer, Qwen3ForCausalLM, Qwen3ForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(source)
    causal = Qwen3ForCausalLM.from_pretrained(source).eval()
    config = causal.config
    config.num_labels = num_labels
    config.architectures = ["Qwen3ForSequenceClassification"]
    config.pad_token_id = None
    classifier = Qwen3ForSequenceClassification(config).eval()
    classifier.model.load_state_dict(causal.model.state_dict())
    weight = causal.lm_head.weight.detach()
    yes_id, no_id = (tokenizer.convert_tokens_to_ids(t) for t in (yes, no))
    with torch.no_grad():
        if num_labels == 1:
            classifier.score.weight.copy_((weight[yes_id] - weight[no_id])[None])
        else:
            classifier.score.weight.copy_(torch.stack([weight[no_id], weight[yes_id]]))
    classifier.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_llm_checkpoints(root: Path) -> dict[str, Path]:
    """Every tiny LLM reranker the tests use, keyed by family (plus conversions and an unknown LM)."""
    qwen3 = build_causal_lm(root / "Qwen3-Reranker-0.6B", "qwen3", seed=0)
    return {
        "qwen3-reranker": qwen3,
        "zerank": build_causal_lm(
            root / "zerank-1-small", "qwen3", seed=1, chat_template=QWEN3_CHAT_TEMPLATE
        ),
        "mxbai-rerank-v2": build_causal_lm(root / "mxbai-rerank-base-v2", "qwen2", seed=2),
        "bge-reranker-v2-gemma": build_causal_lm(root / "bge-reranker-v2-gemma", "gemma", seed=3),
        "seq-cls": build_seq_cls_conversion(qwen3, root / "Qwen3-Reranker-0.6B-seq-cls", "yes", "no"),
        "seq-cls-2": build_seq_cls_conversion(qwen3, root / "Qwen3-Reranker-0.6B-2labels", "yes", "no", 2),
        # The Qwen3-Reranker weights under a name no family matches.
        "unknown": Path(shutil.copytree(qwen3, root / "tiny-qwen3-lm")),
    }
