"""Conversations shared with the token's owner over the JSON API (assistant/chat/shared_api.py):
the same ACL and redaction as the read-only page, as the viewer, and a 404 for anyone else."""

from __future__ import annotations

import json

from assistant.accounts.tokens import api_token_create
from assistant.chat.sharing import conversation_share_revoke
from assistant.chat.models import Message
from tests.chat.test_sharing import (  # noqa: F401 - fixtures
    ANSWER, PUBLIC_TEXT, PUBLIC_TITLE, SECRET_TITLE, answer, colleague, conversation, share,
)


def auth(user, scopes=None) -> dict:
    secret = api_token_create(user=user, name="test", **({"scopes": scopes} if scopes else {}))[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_a_viewer_lists_and_reads_it_with_only_the_citations_they_may_open(client, owner, colleague, conversation,
                                                                            answer):
    share(conversation, owner, usernames=["colleague"])
    headers = auth(colleague)
    [listed] = client.get("/api/v1/shared", **headers).json()["data"]
    assert listed["id"] == str(conversation.id) and listed["owner"] == "owner" and listed["via_groups"] == []
    response = client.get(f"/api/v1/shared/{conversation.id}", **headers)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "shared_conversation" and data["title"] == "Pay and travel"
    question, shown = data["messages"]
    assert question["content"] == "Pay and trains?" and shown["content"] == ANSWER
    # [1] is engineering-only: a bare marker; [2] is public: the whole citation, absolute link
    assert shown["citations"][0] == {"n": 1, "available": False}
    public = shown["citations"][1]
    assert public["available"] and public["title"] == PUBLIC_TITLE and public["document_url"].startswith("http")
    body = response.content.decode()
    secret = answer.sources[0]
    for leak in (SECRET_TITLE, "Bonuses are capped", secret["document_id"], "what does", "Found 1 passage"):
        assert leak not in body, leak
    assert PUBLIC_TEXT[:20] in body
    assert [s.get("unavailable", False) for s in shown["sources"] if s.get("cited")] == [True, False]


def test_a_teammate_sees_what_their_group_may_open(client, owner, teammate, conversation):
    share(conversation, owner, groups=["engineering"])
    data = client.get(f"/api/v1/shared/{conversation.id}", **auth(teammate)).json()
    assert [c["available"] for c in data["messages"][1]["citations"]] == [True, True]
    assert SECRET_TITLE in json.dumps(data)
    [listed] = client.get("/api/v1/shared/", **auth(teammate)).json()["data"]
    assert listed["via_groups"] == ["engineering"]


def test_anyone_it_is_not_shared_with_gets_404_and_revoking_stops_the_next_call(client, owner, colleague, outsider,
                                                                                conversation):
    url = f"/api/v1/shared/{conversation.id}"
    assert client.get(url, **auth(colleague)).status_code == 404
    [created] = share(conversation, owner, usernames=["colleague"])
    headers = auth(colleague)
    assert client.get(url, **headers).status_code == 200
    outsider_response = client.get(url, **auth(outsider))
    assert outsider_response.status_code == 404 and outsider_response.json()["error"]["code"] == "conversation_not_found"
    assert client.get("/api/v1/shared", **auth(outsider)).json()["data"] == []
    # the shared view is read-only: the owner's own endpoints stay the owner's
    assert client.get(f"/api/v1/conversations/{conversation.id}", **headers).status_code == 404
    conversation_share_revoke(share=created, actor=owner)
    assert client.get(url, **headers).status_code == 404


def test_an_answer_being_written_has_no_text_yet(client, owner, colleague, conversation, answer):
    share(conversation, owner, usernames=["colleague"])
    question = Message.objects.create(conversation=conversation, parent=answer, role="user", content="Per diem?")
    streaming = Message.objects.create(conversation=conversation, parent=question, role="assistant",
                                       content="Half writ", status=Message.Status.STREAMING)
    conversation.active_leaf = streaming
    conversation.save(update_fields=["active_leaf"])
    last = client.get(f"/api/v1/shared/{conversation.id}", **auth(colleague)).json()["messages"][-1]
    assert last["status"] == "streaming" and last["content"] == ""


def test_it_needs_the_read_scope_and_takes_only_get(client, owner, colleague, conversation):
    share(conversation, owner, usernames=["colleague"])
    ask_only = client.get(f"/api/v1/shared/{conversation.id}", **auth(colleague, scopes=["ask"]))
    assert ask_only.status_code == 403 and ask_only.json()["error"]["param"] == "conversations:read"
    posted = client.post(f"/api/v1/shared/{conversation.id}", "{}", content_type="application/json",
                         **auth(colleague))
    assert posted.status_code == 405 and posted["Allow"] == "GET"
    assert client.get("/api/v1/shared").status_code == 401
