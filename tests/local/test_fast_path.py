"""The local fast path: precision and backends, ONNX export cache, windows, batching, model cache."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import ConfigError, create_reranker
from core.local import onnx_export, precision
from core.local.batching import length_sorted_batches, pad_batch
from core.local.cross_encoder import CrossEncoderRuntime, load_cross_encoder
from core.local.models import cached_model_count
from core.local.threads import apply_torch_threads, available_cpus
from core.local.windows import best_per_document, room_beside_query, token_windows
from tests.support.model_factory import QUERY, TEXTS, WORDS, build_tiny_cross_encoder


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 40)))) for _ in range(n)]


def rerank(provider: str, path: Path | str, **config: object):
    return create_reranker({"provider": provider, "config": {"model": str(path), **config}})


def top(scores: list[float], k: int) -> set[int]:
    return set(np.argsort(-np.asarray(scores))[:k].tolist())


def rank_correlation(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.fixture(autouse=True)
def _no_cache_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(onnx_export.CACHE_ENV, raising=False)


@pytest.fixture(scope="module")
def tiny_bi_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random small BERT saved as a sentence-transformers bi-encoder (mean pooling, normalised)."""
    from sentence_transformers import SentenceTransformer, models

    base = build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-bert"), num_labels=1, seed=3)
    encoder = models.Transformer(str(base), max_seq_length=64)
    modules = [encoder, models.Pooling(encoder.get_embedding_dimension(), "mean"), models.Normalize()]
    folder = tmp_path_factory.mktemp("tiny-bi")
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


# --- precision, threads, options ---------------------------------------------------------------
def test_auto_precision_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto", "cpu", "torch") == "bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto", "cpu", "torch") == "float32"
    assert precision.resolve_precision("auto", "cuda", "torch") == "float16"
    assert precision.resolve_precision("auto", "cuda:1", "torch") == "float16"
    assert precision.resolve_precision("auto", "mps", "torch") == "float32"
    assert precision.resolve_precision("auto", "cpu", "onnx") == "float32"
    assert precision.resolve_precision("int8", "cpu", "onnx") == "int8"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"backend": "torch", "dtype": "int8"}, "dtype='int8'"),
        ({"backend": "onnx", "dtype": "bfloat16"}, "dtype='bfloat16'"),
        ({"backend": "tensorrt"}, "backend"),
        ({"long_documents": "split"}, "long_documents"),
        ({"max_chunks_per_doc": 0}, "max_chunks_per_doc"),
        ({"max_windows_per_doc": 0}, "max_windows_per_doc"),
        ({"num_threads": 0}, "num_threads"),
    ],
)
def test_bad_fast_path_options_name_the_field(tiny_cross_encoder: Path, config: dict, field: str) -> None:
    for provider in ("huggingface", "sentence_transformer"):
        with pytest.raises(ConfigError, match=field):
            rerank(provider, tiny_cross_encoder, **config)


def test_max_windows_per_doc_is_the_window_cap_and_its_old_name_still_works() -> None:
    from core.providers.huggingface import HuggingFaceRerankerConfig as Config

    assert Config.build({"max_chunks_per_doc": 3}).max_windows_per_doc == 3
    assert Config.build({"max_chunks_per_doc": None}).max_windows_per_doc is None
    assert Config.build({}).max_windows_per_doc == 10
    with pytest.raises(ConfigError, match="max_chunks_per_doc and max_windows_per_doc name one setting"):
        Config.build({"max_chunks_per_doc": 3, "max_windows_per_doc": 4})


def test_thread_settings_use_the_available_cpus() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert apply_torch_threads(1) == 1 and torch.get_num_threads() == 1
        torch.set_num_threads(available_cpus() + 3)
        assert apply_torch_threads(None) == available_cpus() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


# --- batching -------------------------------------------------------------------------------------
def test_batches_are_length_sorted_and_padded_to_their_longest() -> None:
    features = {
        "input_ids": [[1, 2], [1, 2, 3, 4], [1], [1, 2, 3]],
        "attention_mask": [[1] * 2, [1] * 4, [1], [1] * 3],
    }
    batches = length_sorted_batches([len(x) for x in features["input_ids"]], 2)
    assert batches == [[1, 3], [0, 2]]
    right = pad_batch(features, [0, 2], {"input_ids": 9})
    assert right["input_ids"].tolist() == [[1, 2], [1, 9]]
    assert right["attention_mask"].tolist() == [[1, 1], [1, 0]]
    left = pad_batch(features, [0, 2], {"input_ids": 9}, padding_side="left")
    assert left["input_ids"].tolist() == [[1, 2], [9, 1]]
    assert left["attention_mask"].tolist() == [[1, 1], [0, 1]]
    # the mask is built from the real tokens, so features without one pad the same way
    bare = pad_batch({"input_ids": features["input_ids"]}, [1, 2], {"input_ids": 0}, padding_side="left")
    assert bare["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 0, 0, 1]]


def test_forward_passes_never_exceed_batch_size(tiny_cross_encoder: Path) -> None:
    """Memory is bounded by batch_size: the model never sees more rows, whatever the input count."""
    reranker = rerank("huggingface", tiny_cross_encoder, dtype="float32", batch_size=5, max_length=32)
    model = reranker.encoder.model
    shapes: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(
        lambda m, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    long_doc = " ".join(WORDS * 3)
    try:
        plain = reranker.score(QUERY, TEXTS * 20)
        n_plain = len(shapes)
        windowed = rerank(
            "huggingface",
            tiny_cross_encoder,
            dtype="float32",
            batch_size=5,
            max_length=32,
            long_documents="windows",
            max_chunks_per_doc=4,
        ).score(QUERY, [long_doc] * 6 + TEXTS)
    finally:
        handle.remove()
    assert len(plain) == len(TEXTS) * 20 and len(windowed) == 6 + len(TEXTS)
    assert max(rows for rows, _ in shapes) <= 5
    assert sum(rows for rows, _ in shapes[:n_plain]) == len(TEXTS) * 20
    assert sum(rows for rows, _ in shapes[n_plain:]) == 6 * 4 + len(TEXTS)
    assert max(width for _, width in shapes) <= 32


def test_scores_come_back_in_input_order(tiny_cross_encoder: Path) -> None:
    reranker = rerank("huggingface", tiny_cross_encoder, dtype="float32", batch_size=3)
    texts = random_texts(25, seed=1)
    together = reranker.score(QUERY, texts)
    one_by_one = [reranker.score(QUERY, [t])[0] for t in texts]
    assert together == pytest.approx(one_by_one, abs=1e-5)


# --- ONNX backend ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder in its own folder, so its ONNX files are this module's alone."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-onnx"), num_labels=1, seed=1)


def test_onnx_float32_matches_torch(onnx_model: Path) -> None:
    texts = random_texts(30)
    reference = rerank("huggingface", onnx_model, dtype="float32").score(QUERY, texts)
    onnx = rerank("huggingface", onnx_model, backend="onnx", dtype="float32", batch_size=7).score(
        QUERY, texts
    )
    assert onnx == pytest.approx(reference, abs=1e-4)


def test_onnx_int8_keeps_the_ranking(onnx_model: Path) -> None:
    texts = random_texts(40, seed=2)
    reference = rerank("huggingface", onnx_model, dtype="float32").score(QUERY, texts)
    int8 = rerank("huggingface", onnx_model, backend="onnx", dtype="int8").score(QUERY, texts)
    assert int8 != pytest.approx(reference, abs=1e-6), "int8 must really be a different model"
    assert rank_correlation(reference, int8) > 0.95
    assert len(top(reference, 10) & top(int8, 10)) >= 8


def test_int8_file_quantises_the_early_encoder_and_keeps_the_head_float32(onnx_model: Path) -> None:
    import onnx

    runtime = rerank("huggingface", onnx_model, backend="onnx", dtype="int8")
    runtime.warmup()
    path = load_cross_encoder(runtime.config).forward.path  # type: ignore[attr-defined]
    nodes = onnx.load(str(path)).graph.node
    quantised = [n.name for n in nodes if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")]
    float_products = [n.name for n in nodes if n.op_type in ("MatMul", "Gemm")]
    assert quantised, "int8 must quantise something"
    assert [n for n in quantised if "layer.0/" in n]  # the tiny model has two layers
    assert not [n for n in quantised if "classifier" in n or "pooler" in n]
    assert [n for n in float_products if "classifier" in n] and [n for n in float_products if "pooler" in n]
    assert [n for n in float_products if "layer.1/output/dense" in n]  # the last third stays float32


def test_onnx_workers_stop_spinning_after_each_run(onnx_model: Path) -> None:
    reranker = rerank("huggingface", onnx_model, backend="onnx")
    session = load_cross_encoder(reranker.config).forward.session  # type: ignore[attr-defined]
    options = session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert not options.enable_mem_pattern


def test_bfloat16_keeps_the_ranking(onnx_model: Path) -> None:
    texts = random_texts(40, seed=2)
    reference = rerank("huggingface", onnx_model, dtype="float32").score(QUERY, texts)
    bf16 = rerank("huggingface", onnx_model, dtype="bfloat16").score(QUERY, texts)
    assert rank_correlation(reference, bf16) > 0.95


def test_two_logit_head_on_onnx_is_log_odds(tiny_cross_encoder_2labels: Path) -> None:
    reference = rerank("huggingface", tiny_cross_encoder_2labels, dtype="float32").score(QUERY, TEXTS)
    onnx = rerank("sentence_transformer", tiny_cross_encoder_2labels, backend="onnx").score(QUERY, TEXTS)
    assert onnx == pytest.approx(reference, abs=1e-4)


def test_onnx_export_is_cached_beside_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    build_tiny_cross_encoder(folder, num_labels=1)
    first = CrossEncoderRuntime(str(folder), "cpu", "int8", "onnx", False, 1)
    files = sorted((folder / "onnx").glob("*.onnx"))
    assert [f.name for f in files] == [first.forward.path.name]  # type: ignore[attr-defined]
    assert files[0].name.startswith(f"cross_encoder.int8.opset{onnx_export.OPSET}.")
    stamp = files[0].stat().st_mtime_ns
    again = CrossEncoderRuntime(str(folder), "cpu", "int8", "onnx", False, 1)
    assert again.forward.path == files[0] and files[0].stat().st_mtime_ns == stamp  # type: ignore[attr-defined]
    assert not list((folder / "onnx").glob(".export-*")), "no temporary files left behind"
    # a changed checkpoint gets a new file instead of a stale export
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes())
    changed = CrossEncoderRuntime(str(folder), "cpu", "int8", "onnx", False, 1)
    assert changed.forward.path != files[0]  # type: ignore[attr-defined]


def test_onnx_cache_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_model: Path) -> None:
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path / "cache"))
    path = onnx_export.onnx_path(str(onnx_model), "cross_encoder", "float32")
    assert path.parent.parent == tmp_path / "cache"
    monkeypatch.delenv(onnx_export.CACHE_ENV)
    assert onnx_export.onnx_path(str(onnx_model), "cross_encoder", "float32").parent == onnx_model / "onnx"


def test_read_only_model_folder_exports_to_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_model: Path
) -> None:
    monkeypatch.setattr(onnx_export.os, "access", lambda path, mode: False)
    monkeypatch.setattr(onnx_export.Path, "home", lambda: tmp_path)
    path = onnx_export.onnx_path(str(onnx_model), "cross_encoder", "float32")
    assert tmp_path / ".cache" / "rerank-layer" / "onnx" in path.parents


# --- process-wide model cache --------------------------------------------------------------------
def test_one_load_per_model_device_precision_backend(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    build_tiny_cross_encoder(folder, num_labels=1, seed=5)
    before = cached_model_count()
    hf = rerank("huggingface", folder, backend="onnx", batch_size=2)
    st = rerank("sentence_transformer", folder, backend="onnx", max_length=32)
    hf.warmup()
    st.warmup()
    assert hf.encoder is st.encoder, "both providers share one loaded cross-encoder"
    for _ in range(3):
        rerank("huggingface", folder, backend="onnx", batch_size=8).rerank(QUERY, TEXTS)
    assert cached_model_count() == before + 1
    rerank("huggingface", folder, dtype="float32").warmup()
    rerank("huggingface", folder, dtype="float32", max_length=16).warmup()
    assert cached_model_count() == before + 2


# --- bi-encoder mode -------------------------------------------------------------------------------
def test_bi_encoder_backends_agree(tiny_bi_encoder: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_bi_encoder), device="cpu")
    query = model.encode([QUERY], normalize_embeddings=True)[0]
    expected = (model.encode(TEXTS, normalize_embeddings=True) @ query).tolist()
    torch32 = rerank("sentence_transformer", tiny_bi_encoder, dtype="float32", batch_size=3)
    assert torch32.mode == "bi_encoder"
    assert torch32.score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-5)
    onnx = rerank("sentence_transformer", tiny_bi_encoder, backend="onnx", batch_size=3)
    assert onnx.score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-4)
    int8 = rerank("sentence_transformer", tiny_bi_encoder, backend="onnx", dtype="int8")
    assert rank_correlation(expected, int8.score(QUERY, TEXTS)) > 0.9
    bf16 = rerank("sentence_transformer", tiny_bi_encoder, dtype="bfloat16")
    assert rank_correlation(expected, bf16.score(QUERY, TEXTS)) > 0.9


# --- long documents --------------------------------------------------------------------------------
def test_window_spans_cover_overlap_and_cap() -> None:
    spans = token_windows(100, 30, 10)
    assert spans[0] == (0, 30) and spans[-1][1] == 100
    assert all(b[0] == a[1] - 10 for a, b in itertools.pairwise(spans))
    assert all(end - start <= 30 for start, end in spans)
    assert token_windows(25, 30, 10) == [(0, 25)]
    assert token_windows(100, 30, 10, max_windows=2) == spans[:2]
    assert token_windows(100, 30, 25)[1][0] == 15, "overlap is capped at half a window"
    words = [i // 4 for i in range(100)]  # four tokens per word
    assert all(start % 4 == 0 for start, _ in token_windows(100, 30, 10, words=words))


def test_best_window_wins() -> None:
    assert best_per_document([0.1, 0.9, 0.3, -2.0], [0, 0, 1, 2], 3) == [0.9, 0.3, -2.0]


@pytest.fixture(scope="module")
def long_document_case(tiny_cross_encoder: Path) -> dict:
    """A document whose best sentence sits after max_length tokens of its least relevant filler."""
    reranker = rerank("huggingface", tiny_cross_encoder, dtype="float32", max_length=32)
    runtime = reranker.encoder
    room = room_beside_query(runtime.tokenizer, QUERY, 32)
    scores = reranker.score(QUERY, TEXTS)
    best = TEXTS[int(np.argmax(scores))]
    fillers = {t: " ".join((t.split() * room)[:room]) for t in TEXTS if t != best}
    filler_scores = dict(zip(fillers, reranker.score(QUERY, list(fillers.values())), strict=True))
    filler = fillers[min(filler_scores, key=filler_scores.__getitem__)]
    others = [t for t in TEXTS if t != best]
    return {
        "room": room,
        "best": best,
        "best_score": max(scores),
        "filler_score": min(filler_scores.values()),
        "document": " ".join([filler] * 3 + [best]),
        "others": others,
        "other_scores": reranker.score(QUERY, others),
    }


def test_windows_find_a_passage_past_max_length(tiny_cross_encoder: Path, long_document_case: dict) -> None:
    case = long_document_case
    assert len(case["document"].split()) > 32, "the best sentence lies past max_length"
    assert case["filler_score"] < max(case["other_scores"]) < case["best_score"]
    docs = [case["document"], *case["others"]]
    base = {"dtype": "float32", "max_length": 32, "window_overlap": 0}
    truncated = rerank("huggingface", tiny_cross_encoder, **base).rerank(QUERY, docs)
    windowed = rerank("huggingface", tiny_cross_encoder, long_documents="windows", **base).rerank(QUERY, docs)
    assert truncated[0]["text"] != case["document"], "truncation never reads the best sentence"
    assert windowed[0]["text"] == case["document"], "windows find it"
    assert windowed[0]["rerank_raw_score"] == pytest.approx(case["best_score"], abs=1e-5)
    capped = rerank("huggingface", tiny_cross_encoder, long_documents="windows", max_chunks_per_doc=3, **base)
    assert capped.score(QUERY, [case["document"]])[0] == pytest.approx(case["filler_score"], abs=1e-5)


def test_windows_in_bi_encoder_mode(tiny_bi_encoder: Path) -> None:
    long_doc = " ".join(["the cat is a small pet animal"] * 30 + [TEXTS[0]])
    base = {"dtype": "float32", "max_length": 24}
    truncated = rerank("sentence_transformer", tiny_bi_encoder, **base).score(QUERY, [long_doc, TEXTS[0]])
    windowed = rerank("sentence_transformer", tiny_bi_encoder, long_documents="windows", **base)
    scores = windowed.score(QUERY, [long_doc, TEXTS[0]])
    assert scores[1] == pytest.approx(truncated[1], abs=1e-6), "short documents are not windowed"
    assert scores[0] >= truncated[0]


def test_windows_need_a_fast_tokenizer(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    from core.local.windows import split_documents

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ConfigError, match="fast"):
        split_documents(SlowTokenizer(), ["text"], 10, 2, None)


def test_window_texts_are_substrings(tiny_cross_encoder: Path) -> None:
    from core.local.windows import split_documents

    tokenizer = rerank("huggingface", tiny_cross_encoder, dtype="float32").encoder.tokenizer
    text = " ".join(WORDS)
    plan = split_documents(tokenizer, [text, "short text"], 20, 5, None)
    assert plan.owners.count(0) > 1 and plan.owners.count(1) == 1
    assert all(window in text for window, owner in zip(plan.texts, plan.owners, strict=True) if owner == 0)
    assert plan.texts[0].startswith(WORDS[0]) and plan.texts[plan.owners.count(0) - 1].endswith(WORDS[-1])


def test_missing_model_folder_copy_is_reported(tmp_path: Path, tiny_cross_encoder: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_cross_encoder, broken, ignore=shutil.ignore_patterns("onnx", "*.safetensors"))
    with pytest.raises(ConfigError, match="cannot load model"):
        rerank("huggingface", broken, backend="onnx").rerank(QUERY, TEXTS)


def test_onnx_backend_without_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from core import MissingDependencyError

    folder = tmp_path / "m"
    folder.mkdir()
    build_tiny_cross_encoder(folder, num_labels=1, seed=7)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[onnx\]"):
        rerank("huggingface", folder, backend="onnx").rerank(QUERY, TEXTS)


def test_a_shared_model_serves_concurrent_calls(tiny_cross_encoder: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = random_texts(30, seed=4)
    configs = [{"max_length": 16}, {"max_length": 64}, {"max_length": 32, "long_documents": "windows"}]
    rerankers = [rerank("huggingface", tiny_cross_encoder, dtype="float32", **c) for c in configs]
    expected = [r.score(QUERY, texts) for r in rerankers]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(rerankers[i % 3].score, QUERY, texts) for i in range(18)]
        results = [f.result() for f in futures]
    for i, result in enumerate(results):
        assert result == pytest.approx(expected[i % 3], abs=1e-5)
