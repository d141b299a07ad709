"""LLM (causal-LM) rerankers: templates, tokens and scores against each family's reference code.

The reference functions below follow the families' own code, written out here independently of
``core.local.families``: the Qwen3-Reranker model card (format_instruction, process_inputs,
compute_logits), mixedbread's ``mxbai_rerank_v2.py`` (prepare_inputs, forward), FlagEmbedding's
``BaseLLMReranker.compute_score_single_gpu`` and ZeroEntropy's ``modeling_zeranker.py``
(format_pointwise_datapoints, predict). Scores are compared with a plain transformers loop:
full logits, right padding, the last real position read by the attention mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core import ConfigError, create_reranker
from core.local import precision
from core.local.causal_lm import DecoderScorer
from core.local.checkpoints import inspect_checkpoint
from core.local.cross_encoder import CrossEncoderRuntime
from core.local.prompting import PromptSpec
from core.providers.huggingface import HuggingFaceReranker
from core.providers.sentence_transformer import SentenceTransformerReranker, detect_mode
from tests.support.model_factory import QUERY, TEXTS, WORDS

FAMILIES = ("qwen3-reranker", "zerank", "mxbai-rerank-v2", "bge-reranker-v2-gemma")
#: Documents with edges a template can get wrong: leading/trailing spaces, line breaks, braces.
TRICKY = [" paris is the capital", "line one\nline two", "braces {query} and {document}", "  spaced  "]
PAIRS_TEXTS = [*TEXTS, *TRICKY]


# --- the families' reference code ----------------------------------------------------------------
QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
MXBAI_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
)
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your "
    "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)
BGE_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
    "providing a prediction of either 'Yes' or 'No'."
)


def qwen3_format_instruction(instruction: str | None, query: str, doc: str) -> str:
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def qwen3_inputs(tok: Any, query: str, docs: list[str], instruction: str | None, max_length: int) -> list:
    """The Qwen3-Reranker card's process_inputs (without padding)."""
    prefix = tok.encode(QWEN3_PREFIX, add_special_tokens=False)
    suffix = tok.encode(QWEN3_SUFFIX, add_special_tokens=False)
    pairs = [qwen3_format_instruction(instruction, query, d) for d in docs]
    enc = tok(
        pairs,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix) - len(suffix),
    )
    return [prefix + ids + suffix for ids in enc["input_ids"]]


def mxbai_inputs(tok: Any, query: str, docs: list[str], instruction: str | None, max_length: int) -> list:
    """mxbai_rerank_v2's prepare_inputs (no truncation reached at these lengths; without padding)."""

    def ids(text: str) -> list[int]:
        return tok(text, return_tensors=None, add_special_tokens=False)["input_ids"]

    query_prompt = f"query: {query}"
    if instruction:
        query_prompt = "".join([f"instruction: {instruction}", "\n", query_prompt])
    rows = []
    for doc in docs:
        pair = ids(query_prompt) + ids("\n") + ids(f"document: {doc}")
        rows.append(ids(MXBAI_PREFIX) + pair + ids("\n") + ids(MXBAI_TASK) + ids(MXBAI_SUFFIX))
    return rows


def bge_inputs(tok: Any, query: str, docs: list[str], instruction: str | None, max_length: int) -> list:
    """FlagEmbedding's compute_score_single_gpu tokenisation (no truncation reached; without padding)."""
    prompt = BGE_PROMPT if instruction is None else instruction
    prompt_ids = tok(prompt, return_tensors=None, add_special_tokens=False)["input_ids"]
    sep = tok("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    rows = []
    for doc in docs:
        q = tok(f"A: {query}", add_special_tokens=False, max_length=max_length * 3 // 4, truncation=True)
        p = tok(f"B: {doc}", add_special_tokens=False, max_length=max_length, truncation=True)
        first = [tok.bos_token_id] + q["input_ids"]
        rows.append(first + sep + p["input_ids"] + sep + prompt_ids)
    return rows


def zerank_inputs(tok: Any, query: str, docs: list[str], instruction: str | None, max_length: int) -> list:
    """modeling_zeranker's predict (character caps) and format_pointwise_datapoints (without padding)."""
    texts = []
    for doc in docs:
        q, d = query[:2_000], doc[:10_000]
        messages = [{"role": "system", "content": q.strip()}, {"role": "user", "content": d.strip()}]
        texts.append(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return tok(texts)["input_ids"]


REFERENCE_INPUTS: dict[str, Callable[..., list]] = {
    "qwen3-reranker": qwen3_inputs,
    "zerank": zerank_inputs,
    "mxbai-rerank-v2": mxbai_inputs,
    "bge-reranker-v2-gemma": bge_inputs,
}


def reference_probabilities(family: str, path: Path, rows: list[list[int]]) -> list[float]:
    """Each reference's relevance probability: full logits, right padding, last real position."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    last = logits[torch.arange(len(rows)), mask.sum(dim=1) - 1]
    if family == "qwen3-reranker":  # compute_logits: log_softmax over [no, yes], exp of yes
        pair = torch.stack(
            [last[:, tok.convert_tokens_to_ids("no")], last[:, tok.convert_tokens_to_ids("yes")]], 1
        )
        return torch.nn.functional.log_softmax(pair, dim=1)[:, 1].exp().tolist()
    if family == "mxbai-rerank-v2":  # forward: logit("1") - logit("0"); predictions via sigmoid
        yes, no = (tok(t, add_special_tokens=False)["input_ids"][0] for t in ("1", "0"))
        return torch.sigmoid(last[:, yes] - last[:, no]).tolist()
    yes = tok("Yes", add_special_tokens=False)["input_ids"][0]
    if family == "zerank":  # predict: sigmoid(yes logit / 5)
        return [1 / (1 + math.exp(-float(v) / 5.0)) for v in last[:, yes]]
    return torch.sigmoid(last[:, yes]).tolist()  # FlagEmbedding: sigmoid of the "Yes" logit


# --- helpers ----------------------------------------------------------------------------------------
def hf(path: Path, **config: object) -> HuggingFaceReranker:
    reranker = create_reranker(
        {"provider": "huggingface", "config": {"model": str(path), "dtype": "float32", **config}}
    )
    assert isinstance(reranker, HuggingFaceReranker)
    return reranker


def st(path: Path, **config: object) -> SentenceTransformerReranker:
    reranker = create_reranker(
        {"provider": "sentence_transformer", "config": {"model": str(path), "dtype": "float32", **config}}
    )
    assert isinstance(reranker, SentenceTransformerReranker)
    return reranker


def scorer(reranker: HuggingFaceReranker | SentenceTransformerReranker) -> DecoderScorer:
    encoder = reranker.encoder
    assert isinstance(encoder, DecoderScorer)
    return encoder


def encoded(reranker: HuggingFaceReranker, query: str, texts: list[str], max_length: int = 512) -> list:
    decoder = scorer(reranker)
    return list(decoder.runtime.encode(decoder.spec, query, texts, max_length)["input_ids"])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# --- templates and tokens -----------------------------------------------------------------------------
def reference_string(family: str, path: Path, query: str, doc: str, instruction: str | None) -> str:
    """The prompt each reference builds, as one string (the BOS token written as '<bos>')."""
    from transformers import AutoTokenizer

    if family == "qwen3-reranker":
        return QWEN3_PREFIX + qwen3_format_instruction(instruction, query, doc) + QWEN3_SUFFIX
    if family == "mxbai-rerank-v2":
        q = f"query: {query}" if not instruction else f"instruction: {instruction}\nquery: {query}"
        return MXBAI_PREFIX + q + "\n" + f"document: {doc}" + "\n" + MXBAI_TASK + MXBAI_SUFFIX
    if family == "bge-reranker-v2-gemma":
        return f"<bos>A: {query}\nB: {doc}\n" + (instruction or BGE_PROMPT)
    tok = AutoTokenizer.from_pretrained(path)
    messages = [{"role": "system", "content": query.strip()}, {"role": "user", "content": doc.strip()}]
    return str(tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("instruction", [None, "Find the passage that names the city"])
def test_template_renders_the_reference_string(
    llm_checkpoints: dict[str, Path], family: str, instruction: str | None
) -> None:
    from core.local.prompt_options import PromptOptions
    from core.local.prompting import resolve_prompt

    path = llm_checkpoints[family]
    options = PromptOptions(instruction=instruction) if instruction else PromptOptions()
    spec = resolve_prompt(inspect_checkpoint(str(path)), options)
    assert isinstance(spec, PromptSpec) and spec.family == family
    if family == "zerank" and instruction:  # zerank's template has no instruction: it is not used
        instruction = None
    for doc in [TEXTS[0], *TRICKY]:
        expected = reference_string(family, path, QUERY, doc, instruction)
        assert spec.render(QUERY, doc, bos="<bos>") == expected


@pytest.mark.parametrize("family", FAMILIES)
def test_token_ids_are_the_references(llm_checkpoints: dict[str, Path], family: str) -> None:
    from transformers import AutoTokenizer

    path = llm_checkpoints[family]
    tok = AutoTokenizer.from_pretrained(path)
    for query in (QUERY, " padded query\n"):
        expected = REFERENCE_INPUTS[family](tok, query, PAIRS_TEXTS, None, 512)
        assert encoded(hf(path), query, PAIRS_TEXTS) == expected


def test_truncation_cuts_the_document_end_as_the_qwen3_card_does(llm_checkpoints: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    path = llm_checkpoints["qwen3-reranker"]
    long_doc = " ".join(WORDS * 4)
    rows = encoded(hf(path), QUERY, [long_doc, TEXTS[0]], max_length=96)
    expected = qwen3_inputs(AutoTokenizer.from_pretrained(path), QUERY, [long_doc, TEXTS[0]], None, 96)
    assert rows == expected
    assert len(rows[0]) == 96 and len(rows[1]) < 96
    with pytest.raises(ConfigError, match="max_length=16 leaves no room"):
        hf(path, max_length=16).score(QUERY, TEXTS)


# --- scores ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_scores_match_the_reference_loop(llm_checkpoints: dict[str, Path], family: str) -> None:
    from transformers import AutoTokenizer

    path = llm_checkpoints[family]
    rows = REFERENCE_INPUTS[family](AutoTokenizer.from_pretrained(path), QUERY, PAIRS_TEXTS, None, 512)
    expected = reference_probabilities(family, path, rows)
    reranker = hf(path, batch_size=4)
    raw = reranker.score(QUERY, PAIRS_TEXTS)
    assert [sigmoid(r) for r in raw] == pytest.approx(expected, abs=1e-4)
    assert np.std(expected) > 1e-3, "the tiny model must tell the documents apart"
    out = reranker.rerank(QUERY, [{"id": i, "text": t} for i, t in enumerate(PAIRS_TEXTS)])
    assert [row["rerank_score"] for row in out] == pytest.approx(sorted(expected, reverse=True), abs=1e-4)
    assert [row["id"] for row in out] == sorted(range(len(expected)), key=lambda i: -expected[i])


@pytest.mark.parametrize("family", FAMILIES)
def test_a_pairs_score_does_not_depend_on_its_batch(llm_checkpoints: dict[str, Path], family: str) -> None:
    path = llm_checkpoints[family]
    alone = hf(path, batch_size=1).score(QUERY, PAIRS_TEXTS)  # every pair in a batch of its own
    long_doc = " ".join(WORDS * 2)  # pads every short pair in its batch by about a hundred tokens
    for batch_size in (3, len(PAIRS_TEXTS) + 1):
        mixed = hf(path, batch_size=batch_size).score(QUERY, [long_doc, *PAIRS_TEXTS])
        assert mixed[1:] == pytest.approx(alone, abs=1e-4)


def test_batches_are_left_padded_and_only_the_last_position_is_projected(
    llm_checkpoints: dict[str, Path],
) -> None:
    reranker = hf(llm_checkpoints["qwen3-reranker"], batch_size=4)
    runtime = scorer(reranker).runtime
    seen: list[tuple[int, bool, Any]] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        mask = kwargs["attention_mask"]
        seen.append((int(mask.shape[0]), bool(mask[:, -1].all()), kwargs.get("use_cache")))

    body = runtime.body.register_forward_pre_hook(record, with_kwargs=True)
    head_calls: list[int] = []
    head = runtime.model.lm_head.register_forward_hook(lambda *a: head_calls.append(1))
    try:
        reranker.score(QUERY, [*TEXTS, " ".join(WORDS)] * 3)
    finally:
        body.remove()
        head.remove()
    assert sum(n for n, _, _ in seen) == 3 * (len(TEXTS) + 1)
    assert max(n for n, _, _ in seen) <= 4
    assert all(left for _, left, _ in seen), "every row must end in a real token"
    assert all(cache is False for _, _, cache in seen)
    assert head_calls == [], "the vocabulary projection is never run: only the yes/no rows are used"


@pytest.mark.parametrize("labels", ["seq-cls", "seq-cls-2"])
def test_seq_cls_conversions_score_like_the_causal_lm(llm_checkpoints: dict[str, Path], labels: str) -> None:
    causal = hf(llm_checkpoints["qwen3-reranker"]).score(QUERY, PAIRS_TEXTS)
    converted = hf(llm_checkpoints[labels], batch_size=3)
    assert converted.checkpoint.kind == "decoder_classifier"
    assert converted.score(QUERY, PAIRS_TEXTS) == pytest.approx(causal, abs=1e-4)
    assert st(llm_checkpoints[labels], batch_size=2).score(QUERY, PAIRS_TEXTS) == pytest.approx(
        causal, abs=1e-4
    )
    model = scorer(converted).runtime.model
    assert model.config.pad_token_id is not None, "the pad token is set on the loaded classifier"


def test_auto_precision_runs_bf16_close_to_float32(
    llm_checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    path = llm_checkpoints["qwen3-reranker"]
    fast = hf(path, dtype="auto")
    assert scorer(fast).runtime.precision == "bfloat16"
    full = hf(path).score(QUERY, PAIRS_TEXTS)
    assert fast.score(QUERY, PAIRS_TEXTS) == pytest.approx(full, abs=0.1)


def test_long_documents_score_their_best_window(llm_checkpoints: dict[str, Path]) -> None:
    from core.local.windows import split_documents

    path = llm_checkpoints["mxbai-rerank-v2"]
    long_doc = " ".join(WORDS * 2)
    reranker = hf(path, max_length=128, long_documents="windows", window_overlap=8)
    decoder = scorer(reranker)
    room = decoder.runtime.document_room(decoder.spec, QUERY, 128)
    windows = split_documents(decoder.runtime.tokenizer, [long_doc], room, 8, 10).texts
    assert len(windows) > 1
    each = hf(path, max_length=128).score(QUERY, windows)
    assert reranker.score(QUERY, [long_doc, TEXTS[0]])[0] == pytest.approx(max(each), abs=1e-4)
    assert all(len(r) <= 128 for r in encoded(reranker, QUERY, windows, 128))


# --- detection: never misread -------------------------------------------------------------------------
def test_causal_lm_is_never_read_as_a_bi_encoder_or_with_a_random_head(
    llm_checkpoints: dict[str, Path], tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    path = llm_checkpoints["qwen3-reranker"]
    assert detect_mode(str(path), "auto") == "causal_lm"
    auto = st(path)
    assert auto.scale == "logit"
    assert auto.score(QUERY, TEXTS) == pytest.approx(hf(path).score(QUERY, TEXTS), abs=1e-6)
    for forced in ("bi_encoder", "cross_encoder"):
        with pytest.raises(ConfigError, match=f"is a causal-lm checkpoint.*mode='{forced}'"):
            st(path, mode=forced).score(QUERY, TEXTS)
    # The old path: a sequence-classification class on a causal LM gets a fresh random head. Refused.
    with pytest.raises(ConfigError, match=r"no trained weights for score\.weight"):
        CrossEncoderRuntime(str(path), "cpu", "float32", "torch", False, None)
    # A bare encoder (no head at all) through huggingface: refused too.
    from transformers import AutoTokenizer, BertModel

    BertModel.from_pretrained(tiny_cross_encoder).save_pretrained(tmp_path / "bare")
    AutoTokenizer.from_pretrained(tiny_cross_encoder).save_pretrained(tmp_path / "bare")
    with pytest.raises(ConfigError, match=r"no trained weights for classifier\.(bias|weight)"):
        hf(tmp_path / "bare").score(QUERY, TEXTS)


def test_a_qwen3_sentence_embedding_model_stays_a_bi_encoder(
    llm_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """Qwen3-Embedding checkpoints are Qwen3ForCausalLM too: their pooling module says bi-encoder."""
    from sentence_transformers import SentenceTransformer, models

    encoder = models.Transformer(str(llm_checkpoints["unknown"]))
    pooling = models.Pooling(encoder.get_embedding_dimension(), "lasttoken")
    SentenceTransformer(modules=[encoder, pooling, models.Normalize()], device="cpu").save(str(tmp_path))
    assert inspect_checkpoint(str(tmp_path)).kind == "bi_encoder"
    assert detect_mode(str(tmp_path), "auto") == "bi_encoder"


def test_sentence_transformers_logit_score_checkpoint_is_an_llm_reranker(
    llm_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """A sentence-transformers CrossEncoder on a causal LM (LogitScore module): its token ids apply."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder.modules import LogitScore
    from transformers import AutoTokenizer

    path = llm_checkpoints["qwen3-reranker"]
    tok = AutoTokenizer.from_pretrained(path)
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    body = Transformer(str(path), transformer_task="text-generation")
    folder = tmp_path / "Qwen3-Reranker-st"
    CrossEncoder(modules=[body, LogitScore(true_token_id=no, false_token_id=yes)]).save(str(folder))
    checkpoint = inspect_checkpoint(str(folder))
    assert (checkpoint.kind, checkpoint.true_token_id, checkpoint.false_token_id) == ("causal_lm", no, yes)
    assert detect_mode(str(folder), "auto") == "causal_lm"
    flipped = st(folder).score(QUERY, TEXTS)  # declared ids swapped on purpose: scores negate
    assert flipped == pytest.approx([-s for s in hf(path).score(QUERY, TEXTS)], abs=1e-5)


def test_a_causal_lm_of_no_known_family_is_refused_until_told(llm_checkpoints: dict[str, Path]) -> None:
    path = llm_checkpoints["unknown"]
    with pytest.raises(ConfigError, match="no known LLM reranker family.*family"):
        hf(path).score(QUERY, TEXTS)
    with pytest.raises(ConfigError, match="no known LLM reranker family"):
        st(path).score(QUERY, TEXTS)
    same_weights = hf(llm_checkpoints["qwen3-reranker"]).score(QUERY, TEXTS)
    assert hf(path, family="qwen3-reranker").score(QUERY, TEXTS) == pytest.approx(same_weights, abs=1e-6)


# --- overrides --------------------------------------------------------------------------------------
def test_overrides_change_the_prompt_and_tokens(llm_checkpoints: dict[str, Path]) -> None:
    path = llm_checkpoints["qwen3-reranker"]
    default = hf(path).score(QUERY, TEXTS)
    told = hf(path, instruction="Find the city")
    assert "<Instruct>: Find the city\n" in told.encoder.spec.render(QUERY, TEXTS[0])  # type: ignore[union-attr]
    assert told.score(QUERY, TEXTS) != pytest.approx(default, abs=1e-4)
    swapped = hf(path, yes_token="no", no_token="yes").score(QUERY, TEXTS)
    assert swapped == pytest.approx([-s for s in default], abs=1e-5)
    # A custom prompt for an LLM of no known family: one segment, yes-only score.
    custom = hf(
        llm_checkpoints["unknown"], prompt_template="Q: {query}\nD: {document}\nRelevant:", yes_token="yes"
    )
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    rows = [tok(f"Q: {QUERY}\nD: {t}\nRelevant:", add_special_tokens=False)["input_ids"] for t in TEXTS]
    assert encoded(custom, QUERY, TEXTS) == rows


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"prompt_template": "Q: {query}"}, r"prompt_template.*\{document\} exactly once"),
        ({"family": "llama-rank"}, "family.*unknown family 'llama-rank'"),
        ({"yes_token": ""}, "yes_token.*must not be empty"),
    ],
)
def test_bad_prompt_options_name_the_field(
    llm_checkpoints: dict[str, Path], config: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        hf(llm_checkpoints["qwen3-reranker"], **config)


def test_answer_tokens_must_be_single_tokens(llm_checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="yes_token='definitely relevant' is .* tokens"):
        hf(llm_checkpoints["qwen3-reranker"], yes_token="definitely relevant").score(QUERY, TEXTS)


def test_prompt_options_are_refused_for_cross_encoders(tiny_cross_encoder: Path) -> None:
    with pytest.raises(ConfigError, match=r"\['instruction'\] apply to LLM .* cross-encoder checkpoint"):
        hf(tiny_cross_encoder, instruction="x").score(QUERY, TEXTS)


def test_onnx_backend_is_refused_for_llm_rerankers(llm_checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="backend='onnx' is not available for LLM rerankers"):
        hf(llm_checkpoints["zerank"], backend="onnx").score(QUERY, TEXTS)
