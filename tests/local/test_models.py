"""Device choice, the model cache and the embedded model's location."""

from __future__ import annotations

import threading

import pytest

from core.local.models import cached_model, cached_model_count, embedded_model_path, resolve_device


def test_explicit_device_is_kept() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(None) == "cuda"
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device(None) == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device(None) == "cpu"


def test_cached_model_loads_once_even_under_concurrency() -> None:
    calls: list[int] = []
    gate = threading.Barrier(8)

    def load() -> object:
        calls.append(1)
        return object()

    results: list[object] = []

    def worker() -> None:
        gate.wait()
        results.append(cached_model(("test-key", id(calls)), load))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    before = cached_model_count()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(r is results[0] for r in results)
    assert cached_model_count() == before + 1


def test_embedded_model_folder_has_weights() -> None:
    path = embedded_model_path()
    assert path is not None
    assert (path / "model.safetensors").is_file()
    assert (path / "tokenizer.json").is_file()
