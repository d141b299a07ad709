"""Group 2: an API key shows in no serialised form, at any depth of a config (issue 13).

A cascade holds keys in a stage config, in a stage's fallback and in a nested ``llm.config``; the real
SDKs call the loopback fake server with them. Every form a user or a library might write (str, repr,
dumps, JSON, specs, both adapters, the eval report, DEBUG logs, pickles, exception chains) is scanned
for the canary.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from core import ConfigError, create_reranker
from core.evaluation import evaluate
from core.providers.cascade import CascadeReranker
from core.providers.hosted.cohere import CohereRerankerConfig
from core.providers.llm.reranker import LLMRerankerConfig
from core.registry import reranker_spec
from tests.support.beir_files import write_beir
from tests.support.fake_api import FakeApiServer, Fault
from tests.support.hosted_support import FAST

CANARY = "sk-canary-7f3a9c"
ENV_KEY = "sk-from-the-environment"
DOCS = ["the cat sat on the mat", "dogs bark loudly", "a cat and a dog", "nothing relevant here"]


def cascade_spec(server: FakeApiServer, key: str = CANARY) -> dict[str, Any]:
    """Keys in a stage config, in that stage's fallback and in the LLM stage's nested ``llm.config``."""
    return {
        "provider": "cascade",
        "config": {
            "stages": [
                {
                    "provider": "cohere",
                    "keep": 3,
                    "config": {
                        "api_key": key,
                        "base_url": server.url,
                        "max_tokens_per_doc": 77,
                        **FAST,
                        "max_retries": 0,
                    },
                    "fallbacks": [
                        {
                            "provider": "zero_entropy",
                            "config": {"api_key": key, "base_url": server.url, **FAST},
                        }
                    ],
                },
                {
                    "provider": "llm_reranker",
                    "config": {
                        "max_tokens": 33,
                        **FAST,
                        "llm": {
                            "provider": "openai",
                            "config": {"api_key": key, "base_url": server.url + "/v1"},
                        },
                    },
                },
            ]
        },
    }


def azure_spec(key: str = CANARY) -> dict[str, Any]:
    """An LLM reranker whose key sits in Mem0's ``llm.config.azure_kwargs``."""
    azure = {"api_key": key, "azure_endpoint": "http://127.0.0.1:9", "azure_deployment": "dep"}
    return {
        "provider": "llm_reranker",
        "config": {
            "provider": "azure_openai",
            "llm": {"provider": "azure_openai", "config": {"azure_kwargs": azure}},
        },
    }


@pytest.fixture
def env_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every provider's key variable set to ENV_KEY (what a rebuilt reranker must read)."""
    for var in ("CO_API_KEY", "ZEROENTROPY_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(var, ENV_KEY)
    yield


def exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def exception_texts(exc: BaseException) -> list[str]:
    """str, repr and (for pydantic errors) ``errors()`` of every exception in the chain."""
    texts = []
    for item in exception_chain(exc):
        texts += [str(item), repr(item)]
        if isinstance(item, ValidationError):
            texts.append(repr(item.errors()))
    return texts


def auth_headers(server: FakeApiServer, provider: str) -> list[str]:
    return [str(r.headers.get("authorization")) for r in server.requests_for(provider)]


def test_keys_at_every_depth_are_stored_as_secretstr(server: FakeApiServer) -> None:
    cascade = create_reranker(cascade_spec(server))
    assert isinstance(cascade, CascadeReranker)
    first, last = cascade.config.stages
    assert isinstance(first.config["api_key"], SecretStr)
    assert isinstance(first.fallbacks[0]["config"]["api_key"], SecretStr)
    assert isinstance(last.config["llm"]["config"]["api_key"], SecretStr)
    azure = create_reranker(azure_spec())
    stored = azure.config.llm["config"]["azure_kwargs"]["api_key"]  # type: ignore[attr-defined, index]
    assert isinstance(stored, SecretStr) and stored.get_secret_value() == CANARY
    assert azure.endpoint.api_key == CANARY  # type: ignore[attr-defined]  # the SDK still gets the key


def test_no_serialised_form_holds_the_key(
    server: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_rerankers import RerankCompressor
    from llamaindex_rerankers import RerankPostprocessor

    cascade = create_reranker(cascade_spec(server))
    azure = create_reranker(azure_spec())
    forms: dict[str, str | bytes] = {}
    for name, reranker in (("cascade", cascade), ("azure", azure)):
        config = reranker.config
        forms |= {
            f"{name} str(config)": str(config),
            f"{name} repr(config)": repr(config),
            f"{name} str(reranker)": str(reranker),
            f"{name} repr(reranker)": repr(reranker),
            f"{name} model_dump()": repr(config.model_dump()),
            f"{name} model_dump(json)": json.dumps(config.model_dump(mode="json")),
            f"{name} model_dump_json()": config.model_dump_json(),
            f"{name} reranker_spec": json.dumps(reranker_spec(reranker)),
            f"{name} pickle(config)": pickle.dumps(config),
        }
    compressor = RerankCompressor(reranker=cascade, top_n=2)
    forms["langchain model_dump_json()"] = compressor.model_dump_json()
    with pytest.warns(DeprecationWarning):
        forms["langchain dict()"] = repr(compressor.dict())
    forms["langchain repr"] = repr(compressor)
    postprocessor = RerankPostprocessor(cascade, top_n=2)
    forms["llamaindex to_json()"] = postprocessor.to_json()
    forms["llamaindex to_dict()"] = repr(postprocessor.to_dict())
    forms["llamaindex repr"] = repr(postprocessor)

    # Real SDK calls at DEBUG: the first Cohere request fails, so the stage's fallback runs with its key.
    server.script("cohere", Fault(status=503))
    caplog.set_level(logging.DEBUG)
    out = cascade.rerank("cat on mat", DOCS)
    assert len(out) == len(DOCS) and out.error is None
    report = evaluate(write_beir(tmp_path / "toy"), cascade, top_n=3, progress=False)
    report.save(tmp_path / "report")
    forms["eval report.json"] = (tmp_path / "report" / "report.json").read_text()
    forms["logs at DEBUG"] = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    for provider in ("cohere", "zeroentropy", "openai"):  # the key was in use on every path
        assert f"Bearer {CANARY}" in auth_headers(server, provider)

    leaked = [
        name
        for name, text in forms.items()
        if (CANARY.encode() if isinstance(text, bytes) else CANARY) in text
    ]
    assert not leaked, f"the key shows in: {leaked}"
    assert "**********" in forms["cascade reranker_spec"] and "**********" in forms["eval report.json"]


def test_settings_named_like_secrets_survive_a_dump_and_rebuild(
    server: FakeApiServer, env_keys: None
) -> None:
    """Only exact ``api_key`` fields are masked: ``max_tokens`` and ``max_tokens_per_doc`` come back."""
    spec = reranker_spec(create_reranker(cascade_spec(server)))
    first, last = spec["config"]["stages"]
    assert first["config"]["max_tokens_per_doc"] == 77 and last["config"]["max_tokens"] == 33
    rebuilt = create_reranker(spec)
    assert isinstance(rebuilt, CascadeReranker)
    cohere, llm = rebuilt.stages
    assert cohere.config.max_tokens_per_doc == 77  # type: ignore[attr-defined]
    assert llm.endpoint.max_tokens == 33  # type: ignore[attr-defined]
    assert rebuilt.rerank("cat on mat", DOCS).error is None
    (request,) = server.requests_for("cohere")
    assert request.body["max_tokens_per_doc"] == 77
    assert auth_headers(server, "cohere") == [f"Bearer {ENV_KEY}"]  # the masked key was dropped
    assert set(auth_headers(server, "openai")) == {f"Bearer {ENV_KEY}"}


def test_a_pickled_config_carries_no_key_and_a_rebuilt_reranker_reads_the_env_var(
    server: FakeApiServer, env_keys: None
) -> None:
    original = create_reranker(cascade_spec(server))
    data = pickle.dumps(original.config)
    assert CANARY.encode() not in data
    config = pickle.loads(data)
    first, last = config.stages
    assert "api_key" not in first.config and "api_key" not in first.fallbacks[0]["config"]
    assert "api_key" not in last.config["llm"]["config"]
    assert first.config["max_tokens_per_doc"] == 77  # every other setting travels
    rebuilt = CascadeReranker(config)
    assert rebuilt.rerank("cat on mat", DOCS).error is None
    assert set(auth_headers(server, "cohere") + auth_headers(server, "openai")) == {f"Bearer {ENV_KEY}"}
    # A top-level SecretStr field is unset in the pickle, so the env var applies there too.
    top = pickle.loads(pickle.dumps(CohereRerankerConfig(api_key=CANARY, base_url=server.url)))
    assert top.api_key is None and "api_key" not in top.model_fields_set


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda s: create_reranker({"provider": "cohere", "config": {"api_key": CANARY, "timeout": "x"}}),
            id="top-level",
        ),
        pytest.param(
            lambda s: create_reranker({"provider": "cohere", "config": {"api_key": CANARY, "bogus": 1}}),
            id="unknown-key",
        ),
        pytest.param(
            lambda s: create_reranker(
                {**cascade_spec(s), "config": {**cascade_spec(s)["config"], "top_k": "three"}}
            ),
            id="cascade",
        ),
        pytest.param(
            lambda s: create_reranker(
                {
                    "provider": "llm_reranker",
                    "config": {"llm": {"provider": "openai", "config": {"api_key": CANARY, "bad": 1}}},
                }
            ),
            id="nested-llm",
        ),
        pytest.param(lambda s: CohereRerankerConfig(api_key=CANARY, bogus=1), id="pydantic-before"),
        pytest.param(
            lambda s: LLMRerankerConfig(api_key=CANARY, window_size=4, window_step=9), id="pydantic-after"
        ),
        pytest.param(
            lambda s: __import__("langchain_rerankers").RerankCompressor(
                reranker={"provider": "cohere", "config": {"api_key": CANARY, "bogus": 1}}
            ),
            id="langchain",
        ),
        pytest.param(
            lambda s: __import__("langchain_rerankers").RerankCompressor(
                model="cohere:rerank-v3.5", cohere_api_key=CANARY, user_agent="langchain"
            ),
            id="langchain-flat-keywords",
        ),
    ],
)
def test_config_errors_keep_no_raw_key(server: FakeApiServer, build: Any) -> None:
    with pytest.raises((ConfigError, ValidationError)) as caught:
        build(server)
    texts = exception_texts(caught.value)
    assert not [t for t in texts if CANARY in t], texts
    if isinstance(caught.value, ConfigError):
        assert not [e for e in exception_chain(caught.value) if isinstance(e, ValidationError)]


def test_assigning_a_key_to_a_frozen_config_does_not_echo_it() -> None:
    config = CohereRerankerConfig(api_key="first")
    with pytest.raises(ConfigError, match="frozen") as caught:
        config.api_key = CANARY  # type: ignore[assignment, misc]
    assert CANARY not in "".join(exception_texts(caught.value))
