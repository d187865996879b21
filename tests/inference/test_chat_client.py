"""The OpenAI-compatible client against the real llama.cpp server, and its errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from inference.chat_client import ChatClient, ModelServerError
from inference.embeddings import HttpEmbedder
from tests.conftest import free_port


@pytest.mark.llm
def test_it_streams_tokens_from_the_model_server(llm_server):
    client = ChatClient(base_url=llm_server["base_url"], model=llm_server["model"])

    async def run():
        return [d async for d in client.stream([{"role": "user", "content": "Say hello to Ada."}], max_tokens=20)]

    deltas = asyncio.run(run())
    assert len([d for d in deltas if d.text]) > 1
    assert "".join(d.text for d in deltas).strip()
    assert client.list_models()[0]["id"] == llm_server["model"]


def test_an_unreachable_server_is_reported_in_plain_words():
    client = ChatClient(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", connect_retries=1)

    async def run():
        return [d async for d in client.stream([{"role": "user", "content": "hi"}])]

    with pytest.raises(ModelServerError, match="not reachable"):
        asyncio.run(run())


def test_http_embedder_batches_and_normalises(monkeypatch):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        import json

        batch = json.loads(request.content)["input"]
        calls.append(len(batch))
        return httpx.Response(200, json={"data": [{"index": i, "embedding": [3.0, 4.0]} for i in range(len(batch))]})

    transport = httpx.MockTransport(handler)
    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=transport, **kw))
    vectors = HttpEmbedder(base_url="http://embed.invalid/v1", model="m", batch_size=2).embed(["a", "b", "c"])
    assert calls == [2, 1]
    assert vectors[0] == pytest.approx([0.6, 0.8])
