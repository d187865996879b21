import httpx
import pytest

from inference.rerank import HttpReranker, RerankError


def test_scores_come_back_in_document_order(monkeypatch):
    def handler(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        assert body["query"] == "vacation days" and body["top_n"] == 3
        return httpx.Response(200, json={"results": [{"index": 2, "relevance_score": 0.9},
                                                     {"index": 0, "relevance_score": 0.1},
                                                     {"index": 1, "relevance_score": 0.5}]})

    transport = httpx.MockTransport(handler)
    monkeypatch.setattr(
        httpx, "post", lambda url, verify=True, **kw: httpx.Client(transport=transport, verify=verify).post(url, **kw)
    )
    assert HttpReranker("http://rerank.invalid/v1", "m").scores("vacation days", ["a", "b", "c"]) == [0.1, 0.5, 0.9]


def test_a_failing_server_is_reported():
    with pytest.raises(RerankError, match="reranking server"):
        HttpReranker("http://127.0.0.1:9/v1", "m", timeout=1).scores("q", ["a"])
