"""zero_entropy's local route: zerank open weights on the LLM path, alone and as the hosted API's fallback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.providers.hosted.zero_entropy import ZeroEntropyReranker
from core.providers.zero_entropy_local import ZeroEntropyLocalReranker
from core.registry import create_reranker, reranker_spec
from tests.support.fake_api import FakeApiServer, Fault
from tests.support.hosted_support import FAST
from tests.support.model_factory import QUERY, TEXTS


def local(path: Path, **config: object) -> ZeroEntropyLocalReranker:
    reranker = create_reranker(
        {
            "provider": "zero_entropy",
            "config": {"model": str(path), "local": True, "dtype": "float32", **config},
        }
    )
    assert isinstance(reranker, ZeroEntropyLocalReranker)
    return reranker


def zerank_reference(path: Path, query: str, texts: list[str]) -> list[float]:
    """ZeroEntropy's modeling_zeranker predict: chat template, right padding, sigmoid(Yes logit / 5)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, padding_side="right")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompts = [
        tok.apply_chat_template(
            [{"role": "system", "content": query.strip()}, {"role": "user", "content": t.strip()}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for t in texts
    ]
    batch = tok(prompts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch, use_cache=False).logits
    last = logits[torch.arange(len(texts)), batch["attention_mask"].sum(dim=1) - 1]
    yes = tok.encode("Yes", add_special_tokens=False)[0]
    return [1 / (1 + math.exp(-float(v) / 5.0)) for v in last[:, yes]]


def test_local_route_scores_like_zeroentropys_code(llm_checkpoints: dict[str, Path]) -> None:
    path = llm_checkpoints["zerank"]
    reranker = local(path)
    out = reranker.rerank(QUERY, [{"id": i, "text": t} for i, t in enumerate(TEXTS)])
    expected = zerank_reference(path, QUERY, TEXTS)
    assert {row["id"]: row["rerank_score"] for row in out} == pytest.approx(
        dict(enumerate(expected)), abs=1e-4
    )
    assert all(
        row["rerank_score"] == pytest.approx(1 / (1 + math.exp(-row["rerank_raw_score"]))) for row in out
    )
    assert out.ranking.provider == "zero_entropy" and out.ranking.model == str(path)


def test_a_folder_of_any_name_scores_as_zerank(llm_checkpoints: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    renamed = Path(shutil.copytree(llm_checkpoints["zerank"], tmp_path / "my-reranker"))
    expected = local(llm_checkpoints["zerank"]).score(QUERY, TEXTS)
    assert local(renamed).score(QUERY, TEXTS) == pytest.approx(expected, abs=1e-6)


def test_api_names_map_to_the_open_weights() -> None:
    for name, hub_id in [
        ("zerank-1-small", "zeroentropy/zerank-1-small"),
        ("zerank-2", "zeroentropy/zerank-2"),
    ]:
        reranker = create_reranker({"provider": "ZeroEntropy", "config": {"model": name, "local": True}})
        assert isinstance(reranker, ZeroEntropyLocalReranker)
        assert reranker.checkpoint_name == hub_id
    hosted = create_reranker({"provider": "zero_entropy", "config": {"api_key": "k"}})
    assert isinstance(hosted, ZeroEntropyReranker) and hosted.config.model == "zerank-1"  # unchanged


def test_spec_round_trip_and_local_false(llm_checkpoints: dict[str, Path]) -> None:
    reranker = local(llm_checkpoints["zerank"], batch_size=4)
    spec = reranker_spec(reranker)
    assert spec["provider"] == "zero_entropy" and spec["config"]["local"] is True
    rebuilt = create_reranker(spec)
    assert isinstance(rebuilt, ZeroEntropyLocalReranker) and rebuilt.config == reranker.config
    config = {"model": "zerank-1", "local": False, "api_key": "k"}
    hosted = create_reranker({"provider": "zero_entropy", "config": config})
    assert isinstance(hosted, ZeroEntropyReranker)
    assert config["local"] is False, "the caller's config is not changed"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"provider": "cohere", "config": {"local": True}}, "'cohere' has no local route"),
        ({"provider": "zero_entropy", "config": {"local": "yes"}}, "'local' must be true or false"),
        (
            {"provider": "zero_entropy", "config": {"local": True, "api_key": "k"}},
            "unknown config key.*api_key",
        ),
    ],
)
def test_bad_local_specs_are_config_errors(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_reranker(spec)


def test_hosted_api_falls_back_to_local_weights(
    llm_checkpoints: dict[str, Path], server: FakeApiServer
) -> None:
    path = llm_checkpoints["zerank"]
    reranker = create_reranker(
        {
            "provider": "zero_entropy",
            "config": {"model": "zerank-1-small", "api_key": "k", "base_url": server.url, **FAST},
            "fallbacks": [
                {
                    "provider": "zero_entropy",
                    "config": {"model": str(path), "local": True, "dtype": "float32"},
                }
            ],
        }
    )
    server.script("zeroentropy", *[Fault(status=503)] * 4)  # the API is down (every retry fails)
    out = reranker.rerank(QUERY, TEXTS)
    assert out.ranking.attempts == ["zero_entropy", "zero_entropy"]
    assert len(server.requests_for("zeroentropy")) == 4
    assert sorted(row["rerank_score"] for row in out) == pytest.approx(
        sorted(zerank_reference(path, QUERY, TEXTS)), abs=1e-4
    )
    assert "rerank_error" not in out[0]
