"""The cohere provider against the fake v2 server, driven by the real cohere SDK."""

from __future__ import annotations

import asyncio

import cohere
import pytest

from core.errors import ConfigError, ProviderError
from core.providers.hosted.cohere import CohereReranker, CohereRerankerConfig
from core.registry import create_reranker
from tests.support.fake_api import DOCS, QUERY, FakeApiServer, Fault, expected_order, word_overlap
from tests.support.hosted_support import hosted


def test_request_body_headers_and_ranking(server: FakeApiServer) -> None:
    out = hosted("cohere", server).rerank(QUERY, [{"memory": d, "id": i} for i, d in enumerate(DOCS)])
    assert [d["id"] for d in out] == expected_order()
    assert [d["rerank_score"] for d in out] == [word_overlap(QUERY, DOCS[i]) for i in expected_order()]
    assert out[0]["rerank_raw_score"] == out[0]["rerank_score"] == 1.0  # probabilities, kept as they are
    assert out.usage == {"search_units": 1.0}
    assert out.ranking.provider == "cohere" and out.ranking.model == "rerank-v3.5"
    (rec,) = server.requests_for("cohere")
    assert (rec.method, rec.path) == ("POST", "/v2/rerank")
    assert rec.body == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS}  # unset options absent
    assert rec.headers["authorization"] == "Bearer k"


def test_model_and_max_tokens_per_doc_are_sent(server: FakeApiServer) -> None:
    hosted("cohere", server, model="rerank-v4.0-fast", max_tokens_per_doc=512).rerank(QUERY, DOCS)
    body = server.requests_for("cohere")[0].body
    assert body["model"] == "rerank-v4.0-fast" and body["max_tokens_per_doc"] == 512


async def test_async_uses_the_async_sdk_client(server: FakeApiServer) -> None:
    reranker = hosted("cohere", server)
    out = await reranker.arerank(QUERY, DOCS, top_k=3)
    assert [d["text"] for d in out] == [DOCS[i] for i in expected_order()[:3]]
    assert isinstance(await reranker.aclient(), cohere.AsyncClientV2)
    assert isinstance(reranker.client(), cohere.ClientV2)
    assert "top_n" not in server.requests_for("cohere")[0].body


def test_top_k_is_applied_here_and_never_sent_as_top_n(server: FakeApiServer) -> None:
    reranker = hosted("cohere", server, documents_per_request=4)
    full = expected_order()
    assert [d["text"] for d in reranker.rerank(QUERY, DOCS, top_k=2)] == [DOCS[i] for i in full[:2]]
    reranker.rerank(QUERY, DOCS, top_k=2, score_threshold=0.1)
    reranker.rerank(QUERY, [*DOCS, "cat"], top_k=2)  # two requests
    assert all("top_n" not in r.body for r in server.requests_for("cohere"))


def test_config_top_k_cuts_the_result(server: FakeApiServer) -> None:
    out = hosted("cohere", server, top_k=1).rerank(QUERY, DOCS)
    assert [d["text"] for d in out] == [DOCS[expected_order()[0]]]
    assert "top_n" not in server.requests_for("cohere")[0].body


def test_key_from_config_then_co_api_key_then_cohere_api_key(
    server: FakeApiServer, no_env: pytest.MonkeyPatch
) -> None:
    def key_sent(**config: object) -> str:
        reranker = CohereReranker({"base_url": server.url, **config})
        reranker.rerank(QUERY, DOCS)
        return server.requests_for("cohere")[-1].headers["authorization"]

    no_env.setenv("COHERE_API_KEY", "from-cohere-api-key")
    assert key_sent() == "Bearer from-cohere-api-key"
    no_env.setenv("CO_API_KEY", "from-co-api-key")
    assert key_sent() == "Bearer from-co-api-key"
    assert key_sent(api_key="from-config") == "Bearer from-config"


def test_missing_key_is_a_config_error(no_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="CO_API_KEY"):
        create_reranker({"provider": "cohere"})


def test_base_url_from_co_api_url(server: FakeApiServer, no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("CO_API_URL", server.url)
    reranker = CohereReranker(api_key="k")
    assert reranker.base_url == server.url
    assert reranker.rerank(QUERY, DOCS).ranking.error is None
    assert len(server.requests_for("cohere")) == 1
    assert CohereReranker(api_key="k", base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"
    no_env.delenv("CO_API_URL")
    assert CohereReranker(api_key="k").base_url == "https://api.cohere.com"


@pytest.mark.parametrize("return_documents", [True, False])
def test_mem0_config_is_accepted(server: FakeApiServer, return_documents: bool) -> None:
    """Mem0's Cohere config as users write it; return_documents has no v2 wire field."""
    mem0 = {"model": "rerank-english-v3.0", "api_key": "k", "top_k": 2}
    config = {**mem0, "return_documents": return_documents, "max_chunks_per_doc": None}
    docs = [{"memory": d, "user_id": "u1"} for d in DOCS]
    out = create_reranker({"provider": "cohere", "config": {**config, "base_url": server.url}}).rerank(
        QUERY, docs
    )
    assert [d["memory"] for d in out] == [DOCS[i] for i in expected_order()[:2]]
    assert all(d["user_id"] == "u1" for d in out) and "rerank_score" not in docs[0]
    body = server.requests_for("cohere")[0].body
    assert body == {"model": "rerank-english-v3.0", "query": QUERY, "documents": DOCS}


def test_v1_max_chunks_per_doc_is_refused_with_the_v2_replacement() -> None:
    with pytest.raises(ConfigError, match=r"max_chunks_per_doc.*max_tokens_per_doc"):
        CohereReranker(api_key="k", max_chunks_per_doc=10)
    assert CohereRerankerConfig(max_chunks_per_doc=None).max_chunks_per_doc is None


def test_config_defaults_and_unknown_keys() -> None:
    config = CohereRerankerConfig()
    assert (config.model, config.top_k, config.return_documents, config.max_tokens_per_doc) == (
        "rerank-v3.5",
        None,
        False,
        None,
    )
    with pytest.raises(ConfigError, match="rank_fields"):
        CohereReranker(api_key="k", rank_fields=["text"])
    with pytest.raises(ConfigError, match="max_tokens_per_doc"):
        CohereReranker(api_key="k", max_tokens_per_doc=0)


def test_error_carries_provider_status_and_message(server: FakeApiServer) -> None:
    server.script("cohere", Fault(status=422, body={"message": "too many tokens in query"}))
    reranker = hosted("cohere", server, on_error="raise")
    with pytest.raises(ProviderError) as info:
        reranker.rerank(QUERY, DOCS)
    err = info.value
    assert (err.provider, err.status, err.retryable) == ("cohere", 422, False)
    assert err.message == "too many tokens in query" and "[cohere HTTP 422]" in str(err)
    assert len(server.requests_for("cohere")) == 1  # 422 is not retried


def test_chunks_merge_usage(server: FakeApiServer) -> None:
    docs = [f"cat number {i}" if i % 3 else f"mat {i}" for i in range(25)]
    out = hosted("cohere", server, documents_per_request=10).rerank(QUERY, docs)
    assert [d["text"] for d in out] == [docs[i] for i in expected_order(docs)]
    assert out.usage == {"search_units": 3.0}
    assert sorted(len(r.body["documents"]) for r in server.requests_for("cohere")) == [5, 10, 10]


def test_async_clients_are_per_event_loop(server: FakeApiServer) -> None:
    reranker = hosted("cohere", server)

    async def client_twice() -> tuple[object, object]:
        first = await reranker.aclient()
        await reranker.arerank(QUERY, DOCS)
        return first, await reranker.aclient()

    a1, a2 = asyncio.run(client_twice())
    b1, _ = asyncio.run(client_twice())
    assert a1 is a2 and a1 is not b1
    assert len(server.requests_for("cohere")) == 2


def test_usage_counts_are_ints(server: FakeApiServer) -> None:
    out = hosted("cohere", server, documents_per_request=2).rerank(QUERY, DOCS)
    assert out.usage == {"search_units": 2} and type(out.usage["search_units"]) is int
