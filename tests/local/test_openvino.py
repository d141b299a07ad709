"""The OpenVINO backend: float32 and static int8 (NNCF), its cache, calibration, and the auto policy."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from core import MissingDependencyError, create_reranker
from core.local import onnx_export, openvino_backend, precision
from core.local.batching import iter_padded_batches
from core.local.calibration import calibration_pairs
from core.local.cross_encoder import CrossEncoderRuntime, load_cross_encoder
from tests.support.model_factory import QUERY, TEXTS, WORDS, build_tiny_cross_encoder

pytest.importorskip("openvino", reason="the openvino extra is part of the dev install")

#: Tolerances. float32 runs the same graph as torch: 1e-4 on logits of a few units. int8 rounds
#: weights and activations: the ranking must hold (rank correlation, top-10 overlap), not the values.
FLOAT32_ABS = 1e-4
INT8_RANK_CORRELATION = 0.9
#: The packaged MiniLM as a bi-encoder: cosine scores in [-1, 1].
MINILM_INT8_ABS = 0.05


def rerank(provider: str, path: Path | str, **config: object):
    return create_reranker({"provider": provider, "config": {"model": str(path), **config}})


def random_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(4, 40)))) for _ in range(n)]


def rank_correlation(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def top(scores: list[float], k: int) -> set[int]:
    return set(np.argsort(-np.asarray(scores))[:k].tolist())


@pytest.fixture(autouse=True)
def _no_cache_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(onnx_export.CACHE_ENV, raising=False)


@pytest.fixture(scope="module")
def ov_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder in its own folder, quantised once for this module."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ov"), num_labels=1, seed=11)


def test_openvino_float32_matches_torch(ov_model: Path) -> None:
    texts = random_texts(30, seed=4)
    reference = rerank("huggingface", ov_model, dtype="float32").score(QUERY, texts)
    ov = rerank("huggingface", ov_model, backend="openvino", dtype="float32", batch_size=7).score(
        QUERY, texts
    )
    assert ov == pytest.approx(reference, abs=FLOAT32_ABS)


def test_openvino_int8_keeps_the_ranking_and_is_cached_beside_the_model(
    ov_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = random_texts(40, seed=5)
    reference = rerank("huggingface", ov_model, dtype="float32").score(QUERY, texts)
    reranker = rerank("huggingface", ov_model, backend="openvino", dtype="int8")
    int8 = reranker.score(QUERY, texts)
    assert int8 != pytest.approx(reference, abs=1e-6), "int8 must really be a different model"
    assert rank_correlation(reference, int8) > INT8_RANK_CORRELATION
    assert len(top(reference, 10) & top(int8, 10)) >= 8
    runtime = load_cross_encoder(reranker.config)
    path = runtime.forward.path  # type: ignore[attr-defined]
    assert path.parent == ov_model / "onnx" and path.suffix == ".xml" and path.with_suffix(".bin").is_file()
    assert openvino_backend.RECIPE in path.name and ".int8-static." in path.name
    assert not list(path.parent.glob(".openvino-*")), "no temporary files left behind"
    import openvino

    ops = {op.get_type_name() for op in openvino.Core().read_model(str(path)).get_ops()}
    assert "FakeQuantize" in ops or "FakeConvert" in ops, "the IR must hold quantised operations"
    # a second load reads the cached file: no second quantisation, the file untouched
    stamp = path.stat().st_mtime_ns
    import nncf

    monkeypatch.setattr(nncf, "quantize", lambda *a, **k: pytest.fail("quantised a second time"))
    again = CrossEncoderRuntime(str(ov_model), "cpu", "int8", "openvino", False, 1)
    assert again.forward.path == path and path.stat().st_mtime_ns == stamp  # type: ignore[attr-defined]
    assert again.score(QUERY, texts, 128, 16, None) == pytest.approx(int8, abs=1e-4)


def test_int8_leaves_the_head_and_the_attention_products_unquantised(ov_model: Path) -> None:
    import openvino

    runtime = CrossEncoderRuntime(str(ov_model), "cpu", "float32", "openvino", False, 1)
    kept = openvino_backend.float_nodes(openvino.Core().read_model(str(runtime.forward.path)))  # type: ignore[attr-defined]
    assert [n for n in kept if "classifier" in n] and [n for n in kept if "pooler" in n]
    assert len([n for n in kept if "attention/self/MatMul" in n]) == 4  # 2 layers: scores and values
    assert not [n for n in kept if "query" in n or "dense/MatMul" in n], "weight products are quantised"


def test_calibration_is_deterministic(ov_model: Path, tmp_path: Path) -> None:
    """The shipped pairs, tokenised the same way every time, give byte-identical int8 files."""
    assert len(calibration_pairs()) == 100 and len(set(calibration_pairs())) == 100
    first = CrossEncoderRuntime(str(ov_model), "cpu", "int8", "openvino", False, 1)
    copy = tmp_path / "copy"
    shutil.copytree(ov_model, copy, ignore=shutil.ignore_patterns("onnx"))
    second = CrossEncoderRuntime(str(copy), "cpu", "int8", "openvino", False, 1)
    batches_a, batches_b = first._calibration_batches(), second._calibration_batches()
    assert len(batches_a) == 100
    assert all(
        a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        for a, b in zip(batches_a, batches_b, strict=True)
    )
    path_a, path_b = first.forward.path, second.forward.path  # type: ignore[attr-defined]
    assert path_a != path_b
    assert path_a.with_suffix(".bin").read_bytes() == path_b.with_suffix(".bin").read_bytes()


def test_packaged_minilm_int8_stays_close_to_float32(
    minilm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path))  # never write beside the installed package
    texts, query = TEXTS, "What is the capital of France?"  # TEXTS[0] answers it
    reference = rerank("sentence_transformer", minilm_path, dtype="float32").score(query, texts)
    int8 = rerank("sentence_transformer", minilm_path, backend="openvino", dtype="int8").score(query, texts)
    assert int8 == pytest.approx(reference, abs=MINILM_INT8_ABS)
    assert int(np.argmax(int8)) == int(np.argmax(reference)) == 0
    assert rank_correlation(reference, int8) > INT8_RANK_CORRELATION
    assert list(tmp_path.rglob("bi_encoder.int8-static.*.xml"))


def test_openvino_without_its_packages_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    build_tiny_cross_encoder(folder, num_labels=1, seed=12)
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r"rerank-layer\[openvino\]"):
        rerank("huggingface", folder, backend="openvino", dtype="float32").rerank(QUERY, TEXTS)
    monkeypatch.delitem(sys.modules, "openvino")
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(MissingDependencyError, match=r"'nncf'.*rerank-layer\[openvino\]"):
        rerank("huggingface", folder, backend="openvino", dtype="int8").rerank(QUERY, TEXTS)


def test_openvino_runs_on_the_cpu_only(ov_model: Path) -> None:
    from core import ConfigError

    with pytest.raises(ConfigError, match="device"):
        rerank("huggingface", ov_model, backend="openvino", device="cuda").rerank(QUERY, TEXTS)


# --- the auto policy ---------------------------------------------------------------------------------
VNNI_BF16 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})  # e.g. this AMD EPYC (Zen 4)
VNNI_ONLY = frozenset({"avx2", "avx512f", "avx512_vnni"})  # e.g. Cascade Lake, Ice Lake
AVX2_ONLY = frozenset({"avx2", "fma"})  # e.g. Haswell, Zen 2
BF16_NO_VNNI = frozenset({"avx2", "avx512_bf16"})  # hypothetical: native bf16, no int8 dot product


@pytest.mark.parametrize(
    ("features", "openvino", "torch"),
    [
        (VNNI_BF16, "int8", "bfloat16"),
        (VNNI_ONLY, "int8", "float32"),
        (AVX2_ONLY, "float32", "float32"),
        (BF16_NO_VNNI, "bfloat16", "bfloat16"),
        (frozenset({"asimd", "asimddp", "bf16"}), "int8", "bfloat16"),  # Arm Neoverse V1
    ],
)
def test_auto_precision_follows_the_cpu_features(
    features: frozenset[str], openvino: str, torch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "installed", lambda backend: True)
    assert precision.resolve_precision("auto", "cpu", "openvino", features) == openvino
    assert precision.resolve_precision("auto", "cpu", "torch", features) == torch
    assert precision.resolve_precision("auto", "cpu", "onnx", features) == "float32"
    assert precision.resolve_precision("bfloat16", "cpu", "openvino", features) == "bfloat16"
    # without NNCF, openvino cannot calibrate int8: auto falls back to a float precision
    monkeypatch.setattr(precision, "installed", lambda backend: backend != "openvino-int8")
    assert precision.resolve_precision("auto", "cpu", "openvino", features) != "int8"


def test_auto_backend_prefers_openvino_for_cross_encoders_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "installed", lambda backend: True)
    assert precision.resolve_backend("auto", "cpu", "auto", "cross_encoder") == "openvino"
    assert precision.resolve_backend("auto", "cpu", "int8", "cross_encoder") == "openvino"
    assert precision.resolve_backend("auto", "cpu", "float32", "cross_encoder") == "torch"  # the reference
    assert precision.resolve_backend("auto", "cuda", "auto", "cross_encoder") == "torch"
    assert precision.resolve_backend("auto", "cpu", "auto", "bi_encoder") == "torch"
    assert precision.resolve_backend("onnx", "cpu", "auto", "cross_encoder") == "onnx"
    monkeypatch.setattr(precision, "installed", lambda backend: backend == "onnx")  # no openvino extra
    assert precision.resolve_backend("auto", "cpu", "auto", "cross_encoder") == "torch"
    assert precision.resolve_backend("auto", "cpu", "int8", "cross_encoder") == "onnx"


def test_cpu_flags_can_be_overridden_to_emulate_an_older_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(precision.CPU_FLAGS_ENV, "avx2 fma")
    precision.cpu_flags.cache_clear()
    precision.cpu_has_native_bf16.cache_clear()
    try:
        assert precision.cpu_flags() == {"avx2", "fma"} and not precision.cpu_has_native_bf16()
        assert precision.resolve_precision("auto", "cpu", "torch") == "float32"
    finally:
        monkeypatch.delenv(precision.CPU_FLAGS_ENV)
        precision.cpu_flags.cache_clear()
        precision.cpu_has_native_bf16.cache_clear()


def test_streams_score_like_one_stream_and_every_stream_gets_a_batch(ov_model: Path) -> None:
    reranker = rerank("huggingface", ov_model, backend="openvino", dtype="int8")
    runtime = load_cross_encoder(reranker.config)
    path = runtime.forward.path  # type: ignore[attr-defined]
    one = openvino_backend.OpenVinoForward(path, 2, "float32", streams=1)
    two = openvino_backend.OpenVinoForward(path, 2, "float32", streams=2)
    assert (one.streams, two.streams) == (1, 2)
    assert two.batch_size(20, 32) == 10  # split so both streams work
    assert two.batch_size(500, 32) == openvino_backend.OPENVINO_MAX_BATCH
    assert two.batch_size(500, 4) == 4  # batch_size still caps memory
    assert one.batch_size(1, 32) == 1
    features = runtime.encode(QUERY, random_texts(45, seed=8), 128)
    batches = list(iter_padded_batches(features, 8, runtime.pad_values))
    single = dict((tuple(i), rows) for i, rows in one.run_batches(batches))
    paired = dict((tuple(i), rows) for i, rows in two.run_batches(batches))
    assert single.keys() == paired.keys() and len(paired) == len(batches)
    for key, rows in single.items():
        assert paired[key] == pytest.approx(rows, abs=1e-5)


def test_a_batch_openvino_never_finished_is_an_error_not_a_missing_score(
    ov_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reranker = rerank("huggingface", ov_model, backend="openvino", dtype="int8")
    runtime = load_cross_encoder(reranker.config)
    forward = openvino_backend.OpenVinoForward(runtime.forward.path, 2, "float32", streams=2)  # type: ignore[attr-defined]

    class SilentQueue:  # runs nothing and never calls back
        def __init__(self, *args: object) -> None:
            pass

        def set_callback(self, callback: object) -> None:
            pass

        def start_async(self, *args: object) -> None:
            pass

        def wait_all(self) -> None:
            pass

    monkeypatch.setattr(forward.ov, "AsyncInferQueue", SilentQueue)
    batches = list(iter_padded_batches(runtime.encode(QUERY, TEXTS, 64), 2, runtime.pad_values))
    with pytest.raises(RuntimeError, match=f"finished 0 of {len(batches)} batches"):
        forward.run_batches(batches)
