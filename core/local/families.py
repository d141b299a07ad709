"""LLM reranker families as data: prompt template, yes/no tokens, default instruction and score rule.

Each family was checked against its reference code (``reference``). A template is a tuple of
segments, tokenised one by one exactly where the reference tokenises separately and joined:
``{query}``, ``{document}`` and ``{instruction}`` are filled in, and the segment ``{bos}`` is the
tokenizer's BOS token (when it has one distinct from its pad token). The raw score is
``(logit(yes) - logit(no)) * score_scale``, or ``logit(yes) * score_scale`` without a no token, so
``sigmoid(raw)`` is the probability the family's reference reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ConfigError

#: A segment that stands for the tokenizer's BOS token.
BOS = "{bos}"
#: The placeholders a segment may hold.
FIELDS = ("query", "document", "instruction")


@dataclass(frozen=True)
class Family:
    """How one family of causal-LM rerankers turns a (query, document) pair into a score."""

    name: str
    #: Regular expressions (case-insensitive) searched in the model name or path.
    patterns: tuple[str, ...]
    segments: tuple[str, ...]
    yes_token: str
    no_token: str | None
    #: The instruction used when the config sets none (None: the template's ``{instruction}`` is empty).
    instruction: str | None = None
    #: How a set instruction is written into ``{instruction}``.
    instruction_format: str = "{instruction}"
    score_scale: float = 1.0
    #: The reference strips surrounding whitespace from the query and the document.
    strip: bool = False
    #: The reference cuts the query / document to this many characters before templating.
    max_query_chars: int | None = None
    max_document_chars: int | None = None
    #: ``model_type`` values of the published checkpoints (documentation).
    model_types: tuple[str, ...] = ()
    #: What the template, tokens and score rule were checked against.
    reference: str = ""


_QWEN3_SYSTEM = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
_MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your "
    "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)
_BGE_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
    "providing a prediction of either 'Yes' or 'No'."
)

FAMILIES: tuple[Family, ...] = (
    Family(
        name="qwen3-reranker",
        patterns=(r"qwen3-reranker",),
        segments=(
            _QWEN3_SYSTEM,
            "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
            "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
        ),
        yes_token="yes",
        no_token="no",
        instruction="Given a web search query, retrieve relevant passages that answer the query",
        model_types=("qwen3",),
        reference=(
            "Qwen/Qwen3-Reranker-0.6B model card (format_instruction, process_inputs, compute_logits: "
            "log_softmax over [no, yes] of the last position, P(yes) = sigmoid(yes - no))"
        ),
    ),
    Family(
        name="zerank",
        patterns=(r"zerank",),
        # Qwen3's chat template: system = query, user = document, generation prompt. Cut before
        # <|im_end|>, a special token the tokenizer splits at anyway, so this equals one string.
        segments=(
            "<|im_start|>system\n{query}<|im_end|>\n<|im_start|>user\n{document}",
            "<|im_end|>\n<|im_start|>assistant\n",
        ),
        yes_token="Yes",
        no_token=None,
        score_scale=0.2,
        strip=True,
        max_query_chars=2000,
        max_document_chars=10000,
        model_types=("qwen3",),
        reference=(
            "zeroentropy/zerank-1-small modeling_zeranker.py (format_pointwise_datapoints, predict: "
            "'Yes' logit at the last position / 5, sigmoid) and the zerank-2 card (sigmoid(score / 5))"
        ),
    ),
    Family(
        name="mxbai-rerank-v2",
        patterns=(r"mxbai-rerank-[a-z]+-v2",),
        segments=(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
            "<|im_end|>\n<|im_start|>user\n",
            "{instruction}query: {query}",
            "\n",
            "document: {document}",
            "\n",
            _MXBAI_TASK,
            "<|im_end|>\n<|im_start|>assistant\n",
        ),
        yes_token="1",
        no_token="0",
        instruction_format="instruction: {instruction}\n",
        model_types=("qwen2",),
        reference=(
            "mixedbread-ai/mxbai-rerank mxbai_rerank_v2.py (prepare_inputs, concat_input_ids, forward: "
            "logit('1') - logit('0') at the last position)"
        ),
    ),
    Family(
        name="bge-reranker-v2-gemma",
        patterns=(r"bge-reranker-v2-gemma",),
        segments=(BOS, "A: {query}", "\n", "B: {document}", "\n", "{instruction}"),
        yes_token="Yes",
        no_token=None,
        instruction=_BGE_PROMPT,
        model_types=("gemma",),
        reference=(
            "FlagEmbedding decoder_only/base.py BaseLLMReranker (compute_score_single_gpu: "
            "'Yes' logit at the last position, sigmoid when normalize=True) and the model card's get_inputs"
        ),
    ),
)

#: Checkpoints recognised but not run here, and why.
UNSUPPORTED: dict[str, str] = {
    r"layerwise|minicpm-layerwise": (
        "a layer-wise reranker (bge-reranker-v2-minicpm-layerwise): its per-layer score heads need the "
        "checkpoint's own modelling code (FlagEmbedding's LayerWiseFlagLLMReranker)"
    ),
    r"gemma2-lightweight": (
        "bge-reranker-v2.5-gemma2-lightweight compresses tokens in its own modelling code "
        "(FlagEmbedding's LightWeightFlagLLMReranker)"
    ),
}


def family_names() -> list[str]:
    """Every family name a config may set."""
    return [f.name for f in FAMILIES]


def family_by_name(name: str) -> Family:
    """The family called ``name`` (case-insensitive)."""
    for family in FAMILIES:
        if family.name == name.strip().lower():
            return family
    raise ConfigError(f"unknown family {name!r}; known families: {family_names()}")


def find_family(*names: str) -> Family | None:
    """The family whose name pattern occurs in ``names``, tried in order (e.g. folder name, then path)."""
    for name in names:
        for pattern, reason in UNSUPPORTED.items():
            if re.search(pattern, name, re.IGNORECASE):
                raise ConfigError(f"model {name!r} is {reason}; it is not supported")
        for family in FAMILIES:
            if any(re.search(p, name, re.IGNORECASE) for p in family.patterns):
                return family
    return None


def template_fields(segment: str) -> set[str]:
    """The placeholders ``segment`` holds."""
    return set(re.findall(r"\{(" + "|".join(FIELDS) + r")\}", segment))


def fill(segment: str, values: dict[str, str]) -> str:
    """``segment`` with its placeholders replaced in one pass (text holding braces stays as it is)."""
    return re.sub(r"\{(" + "|".join(FIELDS) + r")\}", lambda m: values[m.group(1)], segment)
