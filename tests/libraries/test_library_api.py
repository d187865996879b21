"""Libraries over the APIs (assistant/chat/library_api.py, api.py, openai_api.py): a client lists
the libraries its token's owner may read, pins a conversation to some of them, and asks a
question restricted to them, with the same checks as the pages (a library not shared with the
caller is refused exactly like an unknown id, and names nothing)."""

from __future__ import annotations

import json
import uuid

import pytest

from assistant.accounts.tokens import api_token_create
from assistant.chat.models import Conversation
from assistant.chat.openai_api import MODEL_ID
from connectors.libraries import library_share_set
from tests.chat.fakes import FakeChatClient, use_fake_client
from tests.libraries.conftest import build_library

QUESTION = "What do the Zephyr and Orion plans say about the launch budget?"
REFUSED = "No such library, or it is not shared with you."


def auth(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='test')[1]}"}


def post(client, url, body, headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def zephyr(owner):
    return build_library(owner, "Zephyr", {"zephyr.md": "# Zephyr plan\n\nThe Zephyr launch budget is 40,000 euros.\n"})


@pytest.fixture
def orion(owner):
    return build_library(owner, "Orion", {"orion.md": "# Orion plan\n\nThe Orion launch budget is 95,000 euros.\n"})


def test_each_caller_lists_only_the_libraries_they_may_read(client, zephyr, orion, owner, teammate, colleague,
                                                            outsider):
    library_share_set(library=zephyr, group_names=["engineering"], usernames=["colleague"])
    owned = client.get("/api/v1/libraries", **auth(owner)).json()["data"]
    assert [(lib["name"], lib["owned"], lib["documents"]) for lib in owned] == [("Orion", True, 1), ("Zephyr", True, 1)]
    assert owned[1]["shared_with"] == {"groups": ["engineering"], "users": ["colleague"]}
    for reader in (teammate, colleague):
        [shared] = client.get("/api/v1/libraries/", **auth(reader)).json()["data"]
        assert shared["id"] == str(zephyr.id) and shared["owner"] == "owner" and not shared["owned"]
        assert "shared_with" not in shared  # who else reads it is the owner's to know
    assert client.get("/api/v1/libraries", **auth(outsider)).json()["data"] == []


def test_a_conversation_started_pinned_searches_only_its_libraries(client, zephyr, orion, owner, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    headers = auth(owner)
    created = post(client, "/api/v1/conversations", {"title": "Budgets", "libraries": [str(zephyr.id)]}, headers)
    assert created.status_code == 201, created.content
    assert created.json()["libraries"] == [{"id": str(zephyr.id), "name": "Zephyr"}]
    conversation_id = created.json()["id"]
    asked = post(client, f"/api/v1/conversations/{conversation_id}/messages", {"content": QUESTION}, headers)
    assert asked.status_code == 201, asked.content
    assert "40,000" in fake.user_turn() and "95,000" not in fake.user_turn()

    # re-pinned over the API: both libraries now; [] unpins
    url = f"/api/v1/conversations/{conversation_id}/libraries"
    both = client.put(url, json.dumps({"libraries": [str(zephyr.id), str(orion.id)]}),
                      content_type="application/json", **headers)
    assert both.status_code == 200 and {lib["name"] for lib in both.json()["data"]} == {"Zephyr", "Orion"}
    post(client, f"/api/v1/conversations/{conversation_id}/messages", {"content": QUESTION}, headers)
    assert "40,000" in fake.user_turn(1) and "95,000" in fake.user_turn(1)
    assert client.put(url, json.dumps({"libraries": []}), content_type="application/json",
                      **headers).json()["data"] == []
    assert client.get(f"/api/v1/conversations/{conversation_id}", **headers).json()["libraries"] == []


def test_a_library_not_shared_with_the_caller_is_refused_like_an_unknown_one(client, zephyr, owner, outsider):
    headers = auth(outsider)
    for ids in ([str(zephyr.id)], [str(uuid.uuid4())], ["not-an-id"]):
        refused = post(client, "/api/v1/conversations", {"libraries": ids}, headers)
        assert refused.status_code == 400 and refused.json()["error"]["message"] == REFUSED
        assert refused.json()["error"]["param"] == "libraries" and "Zephyr" not in refused.content.decode()
    assert not Conversation.objects.filter(user=outsider).exists()
    wrong_type = post(client, "/api/v1/conversations", {"libraries": str(zephyr.id)}, headers)
    assert wrong_type.status_code == 400 and "'libraries' must be a list" in wrong_type.json()["error"]["message"]
    # another's conversation: 404 before anything about libraries
    theirs = Conversation.objects.create(user=owner)
    url = f"/api/v1/conversations/{theirs.id}/libraries"
    assert client.get(url, **headers).status_code == 404
    assert client.put(url, json.dumps({"libraries": []}), content_type="application/json", **headers).status_code == 404


def test_pins_unshared_since_disappear_from_the_conversation(client, zephyr, owner, teammate):
    library_share_set(library=zephyr, group_names=["engineering"], usernames=[])
    headers = auth(teammate)
    created = post(client, "/api/v1/conversations", {"libraries": [str(zephyr.id)]}, headers).json()
    url = f"/api/v1/conversations/{created['id']}/libraries"
    assert [lib["name"] for lib in client.get(url, **headers).json()["data"]] == ["Zephyr"]
    library_share_set(library=zephyr, group_names=[], usernames=[])
    assert client.get(url, **headers).json()["data"] == []
    assert client.get(f"/api/v1/conversations/{created['id']}", **headers).json()["libraries"] == []


def test_an_openai_completion_with_libraries_searches_only_them(client, zephyr, orion, owner, outsider, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": QUESTION}], "libraries": [str(orion.id)]}
    response = post(client, "/v1/chat/completions", body, auth(owner))
    assert response.status_code == 200, response.content
    assert "95,000" in fake.user_turn() and "40,000" not in fake.user_turn()
    conversation = Conversation.objects.get(id=response.json()["conversation_id"])
    assert list(conversation.libraries.all()) == [orion]

    refused = post(client, "/v1/chat/completions", body, auth(outsider))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "libraries"
    assert refused.json()["error"]["message"] == REFUSED
    assert not Conversation.objects.filter(user=outsider).exists()
    assert len(fake.calls) == 1  # the refused request never reached the model
