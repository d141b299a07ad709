"""Keys in a spec: masked for shipping, read back from private variables, exported only for a block."""

from __future__ import annotations

import os

from pydantic import SecretStr

from core.batch.secrets import ENV_PREFIX, exported, restore_secrets, split_secrets
from core.secrets import MASKED_SECRET


def test_every_key_is_masked_and_comes_back_from_its_variable():
    spec = {
        "provider": "cascade",
        "config": {
            "text_key": "body",
            "stages": [
                {"provider": "cohere", "config": {"api_key": "sk-one"}, "keep": 5},
                {"provider": "llm_reranker", "config": {"llm": {"config": {"api_key": SecretStr("sk-two")}}}},
            ],
        },
        "fallbacks": [{"provider": "zero_entropy", "config": {"api_key": MASKED_SECRET}}],
    }
    shipped, secrets, refs = split_secrets(spec)
    assert "sk-one" not in repr(shipped) and "sk-two" not in repr(shipped)
    assert shipped["config"]["text_key"] == "body"  # a *_key that is no secret stays
    assert shipped["fallbacks"][0]["config"]["api_key"] == MASKED_SECRET  # already masked: nothing to carry
    assert sorted(secrets.values()) == ["sk-one", "sk-two"] and all(k.startswith(ENV_PREFIX) for k in secrets)
    assert [ref.env for ref in refs] == list(secrets)
    restored = restore_secrets(shipped, refs, env=secrets)
    assert restored["config"]["stages"][0]["config"]["api_key"] == "sk-one"
    assert restored["config"]["stages"][1]["config"]["llm"]["config"]["api_key"] == "sk-two"
    assert (
        restore_secrets(shipped, refs, env={}) == shipped
    )  # no variable: the mask stays, the env var decides


def test_exported_sets_variables_only_inside_the_block(monkeypatch):
    monkeypatch.setenv("RERANK_LAYER_SECRET_KEEP", "old")
    with exported({"RERANK_LAYER_SECRET_KEEP": "new", "RERANK_LAYER_SECRET_TEMP": "t"}):
        assert (
            os.environ["RERANK_LAYER_SECRET_KEEP"] == "new" and os.environ["RERANK_LAYER_SECRET_TEMP"] == "t"
        )
    assert os.environ["RERANK_LAYER_SECRET_KEEP"] == "old" and "RERANK_LAYER_SECRET_TEMP" not in os.environ
