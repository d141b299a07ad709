"""The zero_entropy provider against the fake server, driven by the real zeroentropy SDK."""

from __future__ import annotations

import pytest
import zeroentropy

from core.errors import ConfigError, ProviderError
from core.providers.hosted.zero_entropy import KNOWN_MODELS, ZeroEntropyReranker, ZeroEntropyRerankerConfig
from core.registry import create_reranker
from tests.support.fake_api import DOCS, QUERY, FakeApiServer, Fault, expected_order, word_overlap
from tests.support.hosted_support import hosted


def test_request_body_headers_ranking_and_usage(server: FakeApiServer) -> None:
    out = hosted("zero_entropy", server).rerank(QUERY, [{"text": d} for d in DOCS])
    assert [d["text"] for d in out] == [DOCS[i] for i in expected_order()]
    assert [d["rerank_score"] for d in out] == [word_overlap(QUERY, DOCS[i]) for i in expected_order()]
    (rec,) = server.requests_for("zeroentropy")
    assert (rec.method, rec.path) == ("POST", "/models/rerank")
    assert rec.body == {"documents": DOCS, "model": "zerank-1", "query": QUERY}  # unset options absent
    assert rec.headers["authorization"] == "Bearer k"
    words = sum(len(t.split()) for t in [QUERY, *DOCS])
    size = sum(len(t.encode()) for t in [QUERY, *DOCS])
    assert out.usage == {"total_tokens": float(words), "total_bytes": float(size)}
    assert out.ranking.provider == "zero_entropy" and out.ranking.model == "zerank-1"


@pytest.mark.parametrize("model", KNOWN_MODELS)
def test_models_and_latency_mode_are_sent(server: FakeApiServer, model: str) -> None:
    out = hosted("zero_entropy", server, model=model, latency="slow").rerank(QUERY, DOCS)
    assert out.ranking.model == model
    body = server.requests_for("zeroentropy")[0].body
    assert (body["model"], body["latency"]) == (model, "slow")


def test_base_url_with_v1_prefix(server: FakeApiServer) -> None:
    hosted("zero_entropy", server.url + "/v1").rerank(QUERY, DOCS)
    assert server.requests_for("zeroentropy")[0].path == "/v1/models/rerank"


async def test_async_uses_the_async_sdk_client(server: FakeApiServer) -> None:
    reranker = hosted("zero_entropy", server)
    out = await reranker.arerank(QUERY, DOCS, top_k=2)
    assert [d["text"] for d in out] == [DOCS[i] for i in expected_order()[:2]]
    assert isinstance(await reranker.aclient(), zeroentropy.AsyncZeroEntropy)
    assert isinstance(reranker.client(), zeroentropy.ZeroEntropy)
    assert "top_n" not in server.requests_for("zeroentropy")[0].body


def test_top_k_is_applied_here_and_never_sent_as_top_n(server: FakeApiServer) -> None:
    reranker = hosted("zero_entropy", server)
    out = reranker.rerank(QUERY, DOCS, top_k=1)
    assert [d["text"] for d in out] == [DOCS[expected_order()[0]]]
    reranker.rerank(QUERY, DOCS, top_k=1, score_threshold=0.5)
    assert all("top_n" not in r.body for r in server.requests_for("zeroentropy"))


def test_key_from_config_then_sdk_env_then_mem0_env(
    server: FakeApiServer, no_env: pytest.MonkeyPatch
) -> None:
    def key_sent(**config: object) -> str:
        ZeroEntropyReranker({"base_url": server.url, **config}).rerank(QUERY, DOCS)
        return server.requests_for("zeroentropy")[-1].headers["authorization"]

    no_env.setenv("ZERO_ENTROPY_API_KEY", "mem0-name")
    assert key_sent() == "Bearer mem0-name"
    no_env.setenv("ZEROENTROPY_API_KEY", "sdk-name")
    assert key_sent() == "Bearer sdk-name"
    assert key_sent(api_key="from-config") == "Bearer from-config"


def test_missing_key_is_a_config_error(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="ZEROENTROPY_API_KEY"):
        create_reranker({"provider": "zero_entropy", "config": {"model": "zerank-2"}})


def test_base_url_from_env_then_default(server: FakeApiServer, no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("ZEROENTROPY_BASE_URL", server.url)
    assert ZeroEntropyReranker(api_key="k").rerank(QUERY, DOCS).ranking.error is None
    assert len(server.requests_for("zeroentropy")) == 1
    no_env.delenv("ZEROENTROPY_BASE_URL")
    assert ZeroEntropyReranker(api_key="k").base_url == "https://api.zeroentropy.dev/v1"


def test_mem0_config_and_alias(server: FakeApiServer) -> None:
    mem0 = {"model": "zerank-1-small", "api_key": "k", "top_k": 3}
    reranker = create_reranker({"provider": "zeroentropy", "config": {**mem0, "base_url": server.url}})
    assert isinstance(reranker, ZeroEntropyReranker)
    assert len(reranker.rerank(QUERY, DOCS)) == 3


def test_config_validation() -> None:
    assert ZeroEntropyRerankerConfig().model == "zerank-1"
    with pytest.raises(ConfigError, match="latency"):
        ZeroEntropyReranker(api_key="k", latency="auto")
    with pytest.raises(ConfigError, match="max_chunks_per_doc"):
        ZeroEntropyReranker(api_key="k", max_chunks_per_doc=3)


def test_rate_limit_error_carries_status_message_and_retry_after(server: FakeApiServer) -> None:
    fault = Fault(status=429, body={"error": {"message": "slow down"}}, headers={"retry-after-ms": "5"})
    server.script("zeroentropy", fault)
    reranker = hosted("zero_entropy", server, on_error="raise", max_retries=0)
    with pytest.raises(ProviderError) as info:
        reranker.rerank(QUERY, DOCS)
    err = info.value
    assert (err.provider, err.status, err.retryable, err.message) == ("zero_entropy", 429, True, "slow down")
    assert err.retry_after == pytest.approx(0.005)


def test_usage_counts_are_ints(server: FakeApiServer) -> None:
    out = hosted("zero_entropy", server).rerank(QUERY, DOCS)
    assert set(out.usage) == {"total_tokens", "total_bytes"}
    assert all(type(value) is int for value in out.usage.values())
