"""The two local rerankers on real models: a tiny random BERT and the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core import ConfigError, create_reranker
from core.local.models import cached_model_count, resolve_model_name
from core.providers.huggingface import HuggingFaceReranker
from core.providers.sentence_transformer import SentenceTransformerReranker, detect_mode
from tests.support.model_factory import QUERY, TEXTS, build_tiny_cross_encoder


def hf(path: Path, **config: object) -> HuggingFaceReranker:
    """fp32 unless asked otherwise: the parity checks need full precision (``auto`` may pick bf16)."""
    config = {"dtype": "float32", **config}
    reranker = create_reranker({"provider": "huggingface", "config": {"model": str(path), **config}})
    assert isinstance(reranker, HuggingFaceReranker)
    return reranker


def st(path: Path | str, **config: object) -> SentenceTransformerReranker:
    config = {"dtype": "float32", **config}
    reranker = create_reranker({"provider": "sentence_transformer", "config": {"model": str(path), **config}})
    assert isinstance(reranker, SentenceTransformerReranker)
    return reranker


def test_huggingface_and_sentence_transformer_agree(tiny_cross_encoder: Path) -> None:
    a = hf(tiny_cross_encoder, max_length=64).score(QUERY, TEXTS)
    b = st(tiny_cross_encoder, max_length=64).score(QUERY, TEXTS)
    assert len(set(a)) == len(a), "the tiny model must give distinct scores"
    assert a == pytest.approx(b, abs=1e-5)


def test_two_logit_head_parity_and_log_odds(tiny_cross_encoder_2labels: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    a = hf(tiny_cross_encoder_2labels).score(QUERY, TEXTS)
    b = st(tiny_cross_encoder_2labels).score(QUERY, TEXTS)
    assert a == pytest.approx(b, abs=1e-5)
    tok = AutoTokenizer.from_pretrained(tiny_cross_encoder_2labels)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder_2labels).eval()
    with torch.inference_mode():
        logits = model(**tok([QUERY], [TEXTS[0]], return_tensors="pt")).logits[0]
    assert a[0] == pytest.approx(float(logits[1] - logits[0]), abs=1e-5)
    out = hf(tiny_cross_encoder_2labels).rerank(QUERY, TEXTS[:1])
    assert out[0]["rerank_score"] == pytest.approx(float(torch.softmax(logits, -1)[1]), abs=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 32])
def test_scores_do_not_depend_on_batch_size(tiny_cross_encoder: Path, batch_size: int) -> None:
    reference = hf(tiny_cross_encoder, batch_size=len(TEXTS)).score(QUERY, TEXTS)
    assert hf(tiny_cross_encoder, batch_size=batch_size).score(QUERY, TEXTS) == pytest.approx(
        reference, abs=1e-5
    )
    assert st(tiny_cross_encoder, batch_size=batch_size).score(QUERY, TEXTS) == pytest.approx(
        reference, abs=1e-5
    )


def test_rerank_scores_are_sigmoid_of_logits(tiny_cross_encoder: Path) -> None:
    reranker = hf(tiny_cross_encoder)
    out = reranker.rerank(QUERY, [{"text": t, "id": i} for i, t in enumerate(TEXTS)])
    assert sorted(o["id"] for o in out) == list(range(len(TEXTS)))
    assert [o["rerank_score"] for o in out] == sorted((o["rerank_score"] for o in out), reverse=True)
    for row in out:
        assert 0.0 < row["rerank_score"] < 1.0
        assert row["rerank_score"] == pytest.approx(1 / (1 + math.exp(-row["rerank_raw_score"])))


def test_model_is_loaded_once_per_process(tiny_cross_encoder: Path) -> None:
    hf(tiny_cross_encoder).warmup()
    before = cached_model_count()
    for _ in range(3):
        hf(tiny_cross_encoder, batch_size=4).rerank(QUERY, TEXTS)
    assert cached_model_count() == before


def test_real_minilm_ranks_relevant_passage_first(minilm_path: Path) -> None:
    reranker = st("embedded")
    assert reranker.mode == "bi_encoder"
    assert reranker.scale == "cosine"
    docs = [
        {"id": "unrelated", "text": "The stock market closed higher on Friday after strong earnings."},
        {"id": "relevant", "text": "Paris is the capital and most populous city of France."},
        {"id": "near", "text": "France is a country in Western Europe known for wine."},
    ]
    out = reranker.rerank("What is the capital of France?", docs)
    assert out[0]["id"] == "relevant"
    assert out[-1]["id"] == "unrelated"
    assert out[0]["rerank_score"] - out[-1]["rerank_score"] > 0.1
    assert out[0]["rerank_score"] == pytest.approx((out[0]["rerank_raw_score"] + 1) / 2)


def test_embedded_names_resolve_to_the_packaged_folder(minilm_path: Path) -> None:
    for name in ("embedded", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert resolve_model_name(name) == str(minilm_path)
    assert resolve_model_name("BAAI/bge-reranker-base") == "BAAI/bge-reranker-base"


def test_mode_detection_and_refusal(tiny_cross_encoder: Path, minilm_path: Path) -> None:
    assert detect_mode(str(tiny_cross_encoder), "auto") == "cross_encoder"
    assert detect_mode(str(minilm_path), "auto") == "bi_encoder"
    with pytest.raises(ConfigError, match="is a cross-encoder checkpoint.*mode='bi_encoder'"):
        st(tiny_cross_encoder, mode="bi_encoder").rerank(QUERY, TEXTS)
    with pytest.raises(ConfigError, match="is a bi-encoder checkpoint.*mode='cross_encoder'"):
        st(minilm_path, mode="cross_encoder").rerank(QUERY, TEXTS)


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such local folder"):
        hf(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no such local folder"):
        st(tmp_path / "nowhere")


def test_three_label_head_is_refused(tmp_path: Path) -> None:
    folder = build_tiny_cross_encoder(tmp_path, num_labels=3)
    with pytest.raises(ConfigError, match="3 labels"):
        hf(folder).rerank(QUERY, TEXTS)
    with pytest.raises(ConfigError, match="3 labels"):
        st(folder).rerank(QUERY, TEXTS)


def test_long_candidate_lists_are_batched(tiny_cross_encoder: Path) -> None:
    """Every forward pass sees at most batch_size pairs, whatever the candidate count."""
    reranker = hf(tiny_cross_encoder, batch_size=16, backend="torch")
    model = reranker.encoder.model
    sizes: list[int] = []
    handle = model.register_forward_pre_hook(
        lambda m, args, kwargs: sizes.append(int(kwargs["input_ids"].shape[0])), with_kwargs=True
    )
    try:
        out = reranker.rerank(QUERY, TEXTS * 43)
    finally:
        handle.remove()
    assert len(out) == len(TEXTS) * 43
    assert max(sizes) <= 16 and sum(sizes) == len(TEXTS) * 43
