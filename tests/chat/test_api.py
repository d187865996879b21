"""The token-authenticated JSON API: conversations, questions, answers with citations, ACL."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from assistant.accounts.tokens import api_token_create
from assistant.chat.models import Conversation, Message
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault, serve_fake_llm
from tests.conftest import free_port

QUESTION = "What is the server room vault code?"


def auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='test')[1]}"}


@pytest.fixture
def indexed_folder(db, tmp_path, engineering):
    index_kitchen_and_vault(tmp_path, engineering)


@pytest.fixture
def fake_llm(settings):
    yield from serve_fake_llm(settings)


@pytest.fixture
def conversation(owner) -> Conversation:
    conversation = Conversation.objects.create(user=owner, title="Leave questions")
    Message.objects.create(conversation=conversation, role="user", content="How many days of leave?")
    return conversation


def ask(client, headers, conversation_id, content=QUESTION, **extra):
    return client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json.dumps({"content": content, **extra}), content_type="application/json", **headers,
    )


def test_it_lists_only_the_token_owners_conversations(client, owner, outsider, conversation):
    Conversation.objects.create(user=outsider, title="Outsider secret plans")
    response = client.get("/api/v1/conversations", **auth(owner))
    assert response.status_code == 200
    titles = [c["title"] for c in response.json()["data"]]
    assert titles == ["Leave questions"]
    assert client.get("/api/v1/conversations/", **auth(outsider)).json()["data"][0]["title"] == "Outsider secret plans"


def test_it_pages_through_conversations(client, owner):
    for i in range(3):
        Conversation.objects.create(user=owner, title=f"c{i}")
    headers = auth(owner)
    first = client.get("/api/v1/conversations?limit=2", **headers).json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = client.get("/api/v1/conversations?limit=2&offset=2", **headers).json()
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    bad = client.get("/api/v1/conversations?limit=0", **headers)
    assert bad.status_code == 400 and "'limit' must be between" in bad.json()["error"]["message"]


def test_it_creates_a_conversation(client, owner):
    response = client.post("/api/v1/conversations", json.dumps({"title": "Travel"}),
                           content_type="application/json", **auth(owner))
    assert response.status_code == 201
    data = response.json()
    assert data["title"] == "Travel" and data["url"].startswith("http://testserver/chat/c/")
    assert Conversation.objects.get(id=data["id"]).user == owner


@pytest.mark.parametrize(
    "method,suffix",
    [("get", ""), ("delete", ""), ("get", "/messages"), ("post", "/messages")],
)
def test_it_rejects_outsider_on_another_users_conversation_with_404(client, outsider, conversation, method, suffix):
    kwargs = {"data": json.dumps({"content": "hi"}), "content_type": "application/json"} if method == "post" else {}
    response = getattr(client, method)(f"/api/v1/conversations/{conversation.id}{suffix}", **kwargs, **auth(outsider))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such conversation."
    assert Conversation.objects.filter(id=conversation.id).exists()
    assert conversation.messages.count() == 1


def test_the_owner_deletes_a_conversation(client, owner, conversation):
    headers = auth(owner)
    assert client.delete(f"/api/v1/conversations/{conversation.id}", **headers).status_code == 204
    assert client.get(f"/api/v1/conversations/{conversation.id}", **headers).status_code == 404


def test_bad_input_gets_a_clear_error(client, owner, conversation):
    headers = auth(owner)
    not_json = client.post(f"/api/v1/conversations/{conversation.id}/messages", "{oops",
                           content_type="application/json", **headers)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    no_text = ask(client, headers, conversation.id, content=42)
    assert no_text.status_code == 400 and no_text.json()["error"]["param"] == "content"
    empty = ask(client, headers, conversation.id, content="  ")
    assert empty.status_code == 400 and "question" in empty.json()["error"]["message"].lower()


@pytest.mark.django_db(transaction=True)
def test_an_answer_comes_back_with_its_citations(client, indexed_folder, owner, fake_llm):
    headers = auth(owner)
    created = client.post("/api/v1/conversations", "{}", content_type="application/json", **headers).json()
    response = ask(client, headers, created["id"])
    assert response.status_code == 201, response.content
    answer = response.json()["answer"]
    assert answer["status"] == "complete" and SECRET in answer["content"]
    assert [c["title"] for c in answer["citations"]] == ["Vault access"]
    citation = answer["citations"][0]
    assert SECRET in citation["quote"] and citation["document_url"].startswith("http://testserver/chat/documents/")
    assert response.json()["question"]["content"] == QUESTION

    listed = client.get(f"/api/v1/conversations/{created['id']}/messages", **headers).json()["data"]
    assert [m["role"] for m in listed] == ["user", "assistant"]
    assert listed[1]["citations"] == answer["citations"]


@pytest.mark.django_db(transaction=True)
def test_an_outsiders_token_never_gets_the_owners_private_documents(client, indexed_folder, outsider, fake_llm):
    headers = auth(outsider)
    created = client.post("/api/v1/conversations", "{}", content_type="application/json", **headers).json()
    response = ask(client, headers, created["id"])
    assert response.status_code == 201
    answer = response.json()["answer"]
    assert SECRET not in answer["content"]
    assert all(c["title"] != "Vault access" for c in answer["citations"])
    # the model itself was never shown the restricted document
    assert fake_llm and all(SECRET not in json.dumps(request["messages"]) for request in fake_llm)


@pytest.mark.django_db(transaction=True)
def test_citations_of_a_document_the_user_may_no_longer_read_disappear(client, indexed_folder, owner, engineering,
                                                                        fake_llm):
    headers = auth(owner)
    created = client.post("/api/v1/conversations", "{}", content_type="application/json", **headers).json()
    assert ask(client, headers, created["id"]).json()["answer"]["citations"]
    owner.groups.remove(engineering)
    listed = client.get(f"/api/v1/conversations/{created['id']}", **headers).json()["messages"]
    assert listed[1]["citations"] == []


def as_headers(extra: dict) -> dict:
    """The AsyncClient takes headers by name, not as WSGI environ keys."""
    return {"Authorization": extra["HTTP_AUTHORIZATION"]}


def _stream(path: str, body: dict, headers: dict) -> tuple[int, str, str]:
    async def run():
        response = await AsyncClient().post(path, json.dumps(body), content_type="application/json",
                                               headers=as_headers(headers))
        text = b"".join([chunk async for chunk in response.streaming_content]).decode()
        return response.status_code, response["Content-Type"], text

    return async_to_sync(run)()


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines.get("event"), json.loads(lines["data"])))
    return events


@pytest.mark.django_db(transaction=True)
def test_a_streamed_answer_sends_tokens_then_the_message_with_citations(indexed_folder, owner, fake_llm):
    headers = auth(owner)
    conversation = Conversation.objects.create(user=owner)
    status, content_type, text = _stream(
        f"/api/v1/conversations/{conversation.id}/messages", {"content": QUESTION, "stream": True}, headers
    )
    assert status == 200 and content_type.startswith("text/event-stream")
    events = sse_events(text)
    names = [name for name, _ in events]
    assert names[0] == "created" and names[-1] == "done" and names.count("token") > 1
    streamed = "".join(data["text"] for name, data in events if name == "token")
    done = events[-1][1]["answer"]
    assert done["content"] == streamed.strip() and SECRET in streamed
    assert [c["title"] for c in done["citations"]] == ["Vault access"]


@pytest.mark.django_db(transaction=True)
def test_a_stopped_model_server_gives_a_503_and_keeps_the_question(client, indexed_folder, owner, settings):
    from assistant.chat.answering import get_chat_client

    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings.LLM_CONNECT_RETRIES = 0
    get_chat_client.cache_clear()
    try:
        headers = auth(owner)
        conversation = Conversation.objects.create(user=owner)
        response = ask(client, headers, conversation.id)
    finally:
        get_chat_client.cache_clear()
    assert response.status_code == 503
    body = response.json()
    assert "not reachable" in body["error"]["message"] and body["error"]["type"] == "server_error"
    assert body["question"]["content"] == QUESTION and body["answer"]["status"] == "error"


def test_questions_past_the_rate_limit_get_429_with_retry_after(client, owner, conversation, settings):
    settings.CHAT_RATE_LIMIT = (0, 60)  # every question is over the limit
    response = ask(client, auth(owner), conversation.id)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert "faster than allowed" in error["message"] and error["code"] == "rate_limit_exceeded"
    assert conversation.messages.count() == 1
