"""Flat keywords to a reranker: which provider a model= means, peers' key names, errors naming the key."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.keywords import reranker_from_keywords, spec_for_model
from core.specs import DEFAULT_SPEC
from tests.support.adapter_support import PLUGIN, KeywordReranker


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        ("cohere:rerank-v3.5", {"provider": "cohere", "config": {"model": "rerank-v3.5"}}),
        ("Cohere:rerank-v3.5", {"provider": "Cohere", "config": {"model": "rerank-v3.5"}}),
        ("hf:org/m:v2", {"provider": "hf", "config": {"model": "org/m:v2"}}),
        ("rerank-english-v3.0", {"provider": "cohere", "config": {"model": "rerank-english-v3.0"}}),
        ("zerank-1-small", {"provider": "zero_entropy", "config": {"model": "zerank-1-small"}}),
        ("embedded", {"provider": "sentence_transformer", "config": {"model": "embedded"}}),
        (
            "BAAI/bge-reranker-base",
            {"provider": "sentence_transformer", "config": {"model": "BAAI/bge-reranker-base"}},
        ),
        ("qwen3:4b/x", {"provider": "sentence_transformer", "config": {"model": "qwen3:4b/x"}}),
    ],
)
def test_spec_for_model(model: str, spec: dict[str, object]) -> None:
    assert spec_for_model(model) == spec


def test_a_local_folder_is_a_sentence_transformer_model(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model").mkdir()
    assert spec_for_model("my-model")["provider"] == "sentence_transformer"
    with pytest.raises(ConfigError, match="model 'other-model' names no provider.*'cohere:other-model'"):
        spec_for_model("other-model")


def test_keywords_build_the_same_reranker_as_the_spec() -> None:
    flat = reranker_from_keywords(provider=PLUGIN, model="m", top_k=3, api_key="sk-1")
    assert isinstance(flat, KeywordReranker)
    assert (flat.config.model, flat.config.top_k) == ("m", 3)
    assert flat.config.api_key is not None and flat.config.api_key.get_secret_value() == "sk-1"  # type: ignore[attr-defined]
    from_string = reranker_from_keywords(f"{PLUGIN}:m", top_k=3)
    assert isinstance(from_string, KeywordReranker) and from_string.config.model == "m"
    from_mem0 = reranker_from_keywords({"reranker": {"provider": PLUGIN}}, model="n")
    assert from_mem0.config.model == "n"
    default = reranker_from_keywords()
    assert default.provider == DEFAULT_SPEC["provider"] and default.config.model == "embedded"


def test_cohere_api_key_is_the_api_key_and_names_cohere() -> None:
    built = reranker_from_keywords(model="rerank-v3.5", cohere_api_key="sk-2")
    assert built.provider == "cohere" and built.config.model == "rerank-v3.5"
    assert built.config.api_key.get_secret_value() == "sk-2"  # type: ignore[attr-defined]
    assert reranker_from_keywords(cohere_api_key="sk-2").provider == "cohere"
    with pytest.raises(
        ConfigError, match="'cohere_api_key' is a cohere setting, but the provider is 'huggingface'"
    ):
        reranker_from_keywords(provider="huggingface", cohere_api_key="sk-2")
    with pytest.raises(ConfigError, match="'cohere_api_key' and 'api_key' are the same setting"):
        reranker_from_keywords(provider="cohere", api_key="a", cohere_api_key="b")


def test_errors_name_the_keyword() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown keyword\(s\) \['devise'\] for Adapter: neither its own \(\['top_n'\]\)"
    ):
        reranker_from_keywords(provider=PLUGIN, devise="cpu", owner="Adapter", owner_fields=["top_n"])
    with pytest.raises(ConfigError, match="client: pass api_key"):
        reranker_from_keywords(provider="cohere", client=object())
    with pytest.raises(ConfigError, match="built reranker; \\['top_k'\\] cannot change it"):
        reranker_from_keywords(KeywordReranker(), top_k=1)
    with pytest.raises(ConfigError, match="not both"):
        reranker_from_keywords({"provider": PLUGIN}, provider=PLUGIN)
    with pytest.raises(ConfigError, match="model must be a model name or a spec string, got int"):
        reranker_from_keywords(model=3)
    with pytest.raises(ConfigError, match="unknown reranker provider 'nope'"):
        reranker_from_keywords(provider="nope")
    with pytest.raises(ConfigError, match="needs a 'provider' key"):
        reranker_from_keywords({"config": {}}, top_k=1)
