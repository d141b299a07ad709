"""Real clients against the served tiny cross-encoder: the cohere SDK (v2 and v1), this project's cohere
provider, and plain httpx in the Jina / vLLM shape. Scores must be the in-process ``rank`` scores."""

from __future__ import annotations

import cohere
import pytest

from core import create_reranker
from core.base import BaseReranker
from tests.serve.conftest import MODEL
from tests.support.model_factory import QUERY, TEXTS
from tests.support.serve_support import KEY, RunningServer


def expected(reranker: BaseReranker, texts: list[str], top_n: int | None = None) -> list[tuple[int, float]]:
    ranking = reranker.rank(QUERY, texts, top_k=top_n)
    return [(item.index, item.score) for item in ranking.items]


def pairs(results: list[object]) -> list[tuple[int, float]]:
    return [(r.index, r.relevance_score) for r in results]


def assert_same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)


def test_cohere_sdk_v2(tiny_server: RunningServer, tiny_reranker: BaseReranker) -> None:
    client = cohere.ClientV2(api_key=KEY, base_url=tiny_server.url, timeout=30)
    response = client.rerank(model=MODEL, query=QUERY, documents=TEXTS, top_n=3)
    assert_same(pairs(response.results), expected(tiny_reranker, TEXTS, 3))
    assert response.meta.billed_units.search_units == 1
    assert response.meta.api_version.version == "2"
    assert response.meta.tokens.input_tokens > len(TEXTS)  # the pairs' real token count
    assert len(response.id) == 36  # a UUID


async def test_cohere_async_sdk_v2_all_documents(
    tiny_server: RunningServer, tiny_reranker: BaseReranker
) -> None:
    client = cohere.AsyncClientV2(api_key=KEY, base_url=tiny_server.url, timeout=30)
    response = await client.rerank(model=MODEL, query=QUERY, documents=TEXTS)
    assert_same(pairs(response.results), expected(tiny_reranker, TEXTS))
    assert response.meta.warnings is None


def test_cohere_sdk_v1_with_documents(tiny_server: RunningServer, tiny_reranker: BaseReranker) -> None:
    client = cohere.Client(api_key=KEY, base_url=tiny_server.url, timeout=30)
    docs = [TEXTS[0], {"text": TEXTS[1]}, TEXTS[2]]
    response = client.rerank(model=MODEL, query=QUERY, documents=docs, return_documents=True)
    assert_same(pairs(response.results), expected(tiny_reranker, TEXTS[:3]))
    assert [r.document.text for r in response.results] == [TEXTS[r.index] for r in response.results]


def test_this_projects_cohere_provider(tiny_server: RunningServer, tiny_reranker: BaseReranker) -> None:
    remote = create_reranker(
        {"provider": "cohere", "config": {"model": MODEL, "api_key": KEY, "base_url": tiny_server.url}}
    )
    docs = [{"id": f"d{i}", "memory": text, "source": "kb"} for i, text in enumerate(TEXTS)]
    out = remote.rerank(QUERY, docs, top_k=4)
    want = expected(tiny_reranker, TEXTS, 4)
    assert [d["id"] for d in out] == [f"d{i}" for i, _ in want]
    assert [d["rerank_score"] for d in out] == pytest.approx([s for _, s in want], abs=1e-5)
    assert all(d["source"] == "kb" for d in out) and out.error is None
    assert out.usage == {"search_units": 1.0}


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_jina_shape_over_httpx(tiny_server: RunningServer, tiny_reranker: BaseReranker, path: str) -> None:
    docs = [text if i % 2 else {"text": text} for i, text in enumerate(TEXTS)]
    with tiny_server.client() as http:
        body = http.post(path, json={"model": MODEL, "query": QUERY, "documents": docs, "top_n": 2}).json()
        bare = http.post(
            path, json={"query": QUERY, "documents": TEXTS, "return_documents": False, "top_n": 0}
        ).json()
    assert body["model"] == MODEL
    assert_same(
        [(r["index"], r["relevance_score"]) for r in body["results"]], expected(tiny_reranker, TEXTS, 2)
    )
    assert [r["document"] for r in body["results"]] == [{"text": TEXTS[r["index"]]} for r in body["results"]]
    assert isinstance(body["usage"]["total_tokens"], int) and body["usage"]["total_tokens"] > len(TEXTS)
    assert len(bare["results"]) == len(TEXTS)  # top_n 0: every document (vLLM)
    assert all("document" not in r for r in bare["results"])


def test_max_tokens_per_doc_cuts_each_document(
    tiny_server: RunningServer, tiny_reranker: BaseReranker
) -> None:
    client = cohere.ClientV2(api_key=KEY, base_url=tiny_server.url, timeout=30)
    response = client.rerank(model=MODEL, query=QUERY, documents=TEXTS, max_tokens_per_doc=3)
    cut = [" ".join(text.split()[:3]) for text in TEXTS]  # the tiny vocabulary: one token per word
    assert_same(pairs(response.results), expected(tiny_reranker, cut))


def test_null_optionals_are_accepted(tiny_server: RunningServer, tiny_reranker: BaseReranker) -> None:
    """LangChain's CohereRerank sends ``max_tokens_per_doc: null`` (and may send ``top_n: null``)."""
    payload = {"model": MODEL, "query": QUERY, "documents": TEXTS, "top_n": None, "max_tokens_per_doc": None}
    with tiny_server.client() as http:
        response = http.post("/v2/rerank", json=payload)
    assert response.status_code == 200
    assert_same(
        [(r["index"], r["relevance_score"]) for r in response.json()["results"]],
        expected(tiny_reranker, TEXTS),
    )


def test_empty_documents_answer_no_results(tiny_server: RunningServer) -> None:
    with tiny_server.client() as http:
        body = http.post("/v2/rerank", json={"model": MODEL, "query": QUERY, "documents": []}).json()
    assert body["results"] == [] and body["meta"]["billed_units"]["search_units"] == 0


def test_another_model_is_refused(tiny_server: RunningServer) -> None:
    client = cohere.ClientV2(api_key=KEY, base_url=tiny_server.url, timeout=30)
    with pytest.raises(cohere.NotFoundError) as caught:
        client.rerank(model="rerank-v3.5", query=QUERY, documents=TEXTS, request_options={"max_retries": 0})
    assert "'rerank-v3.5' is not served here" in caught.value.body["message"]
    assert f"serves '{MODEL}'" in caught.value.body["message"]


def test_openapi_lists_the_routes(tiny_server: RunningServer) -> None:
    with tiny_server.client() as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert {"/v2/rerank", "/v1/rerank", "/rerank", "/health", "/metrics"} <= set(paths)


def test_server_timing_reports_model_and_total_time(tiny_server: RunningServer) -> None:
    with tiny_server.client() as http:
        response = http.post("/v2/rerank", json={"model": MODEL, "query": QUERY, "documents": TEXTS})
    parts = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
    assert set(parts) == {"model", "total"}
    assert 0 < float(parts["model"]) <= float(parts["total"])
