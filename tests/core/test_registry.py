"""The Mem0-style factory, provider registry, entry-point plugins and optional dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import core
from core import ConfigError, MissingDependencyError, create_reranker, get_provider_class
from core.registry import BUILTIN_PROVIDERS
from tests.support.toy_rerankers import OverlapReranker

MEM0_KEYS = ["cohere", "zero_entropy", "huggingface", "sentence_transformer", "llm_reranker"]


def test_mem0_provider_keys_are_registered() -> None:
    assert set(MEM0_KEYS) <= set(core.available_providers())
    assert set(MEM0_KEYS) <= set(BUILTIN_PROVIDERS)


def test_aliases_resolve() -> None:
    assert get_provider_class("sentence_transformers") is get_provider_class("sentence_transformer")
    assert get_provider_class("hf") is get_provider_class("huggingface")


def test_spec_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="unknown reranker provider 'nope'; available: \\["):
        create_reranker({"provider": "nope"})
    with pytest.raises(ConfigError, match=r"unknown reranker spec key\(s\) \['confg'\]"):
        create_reranker({"provider": "huggingface", "confg": {}})
    with pytest.raises(ConfigError, match="needs a 'provider' key"):
        create_reranker({"config": {}})
    with pytest.raises(ConfigError, match="'config' must be a dict"):
        create_reranker({"provider": "huggingface", "config": "x"})
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['modle'\]"):
        create_reranker({"provider": "huggingface", "config": {"modle": "x"}})


def test_register_provider_and_fallback_specs() -> None:
    core.register_provider("overlap_test", OverlapReranker)
    reranker = create_reranker(
        {"provider": "overlap_test", "config": {"top_k": 1}, "fallbacks": [{"provider": "overlap_test"}]}
    )
    assert isinstance(reranker, OverlapReranker)
    assert isinstance(reranker.fallbacks[0], OverlapReranker)
    assert reranker.rerank("red apple", ["pear", "red apple"]) == [
        {"text": "red apple", "rerank_score": 1.0, "rerank_raw_score": 1.0}
    ]
    assert create_reranker(reranker) is reranker


def test_entry_point_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party package plugs in through the ``rerank_layer.providers`` entry-point group."""
    (tmp_path / "my_plugin.py").write_text(
        textwrap.dedent(
            """
            from core.base import BaseReranker

            class LengthReranker(BaseReranker):
                provider = "length"
                score_scale = "probability"

                def score(self, query, texts):
                    return [min(1.0, len(t) / 100) for t in texts]
            """
        )
    )
    dist = tmp_path / "my_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rerank_layer.providers]\nlength = my_plugin:LengthReranker\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "length" in core.available_providers()
    out = create_reranker({"provider": "length"}).rerank("q", ["short", "a much longer text"])
    assert out[0]["text"] == "a much longer text"


def test_import_core_needs_no_optional_package() -> None:
    code = (
        "import sys, core, core.registry, core.providers.hosted.base\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'cohere', 'zeroentropy',"
        " 'openai', 'langchain_core', 'llama_index') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_optional_package_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tiny_cross_encoder: Path
) -> None:
    core.clear_model_cache()
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'rerank-layer\[local\]'"):
        create_reranker({"provider": "huggingface", "config": {"model": str(tiny_cross_encoder)}})


# --- specs as strings, Mem0's wrapper, case-insensitive provider names ------------------------------
def test_string_specs_name_a_provider_and_optionally_a_model() -> None:
    from core.specs import parse_spec

    assert parse_spec("cohere") == {"provider": "cohere"}
    assert parse_spec("huggingface:BAAI/bge-reranker-base") == {
        "provider": "huggingface",
        "config": {"model": "BAAI/bge-reranker-base"},
    }
    # The model keeps every ':' after the provider's (revisions, Ollama tags).
    assert parse_spec("llm_reranker:qwen3:8b")["config"] == {"model": "qwen3:8b"}
    with pytest.raises(ConfigError, match="empty model"):
        parse_spec("cohere:")
    with pytest.raises(ConfigError, match="provider name"):
        parse_spec(":model")
    with pytest.raises(ConfigError, match="must be a dict or a string"):
        parse_spec(42)


def test_create_reranker_takes_strings_mem0_wrappers_and_any_case(minilm_path: Path) -> None:
    reranker = create_reranker(f"Sentence_Transformer:{minilm_path}")
    assert type(reranker).__name__ == "SentenceTransformerReranker"
    assert reranker.config.model == str(minilm_path)
    wrapped = create_reranker({"reranker": {"provider": "HuggingFace", "config": {"model": "x"}}})
    assert wrapped.provider == "huggingface" and wrapped.config.model == "x"
    assert get_provider_class("COHERE") is get_provider_class("cohere")
    core.register_provider("MixedCase_Test", OverlapReranker)
    assert isinstance(create_reranker("mixedcase_test"), OverlapReranker)
    fallback = create_reranker({"provider": "mixedcase_test", "fallbacks": ["MIXEDCASE_TEST"]})
    assert isinstance(fallback.fallbacks[0], OverlapReranker)


def test_a_bare_model_id_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"write 'huggingface:BAAI/bge-reranker-base'"):
        create_reranker("BAAI/bge-reranker-base")


def test_spec_dicts_are_not_changed_by_create_reranker() -> None:
    core.register_provider("overlap_test", OverlapReranker)
    spec = {"reranker": {"provider": "overlap_test", "config": {"top_k": 1}}}
    before = repr(spec)
    create_reranker(spec)
    assert repr(spec) == before
