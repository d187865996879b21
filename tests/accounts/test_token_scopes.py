"""API token scopes: chosen on the tokens page, listed there, and enforced by every API endpoint."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from assistant.accounts.models import ApiToken
from assistant.accounts.scopes import SCOPES
from assistant.accounts.tokens import InvalidTokenInput, api_token_create
from assistant.chat import api_urls
from assistant.chat.models import Conversation, Message

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def bearer(user, scopes) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=user, name='t', scopes=scopes)[1]}"}


@pytest.fixture
def conversation(owner) -> Conversation:
    conversation = Conversation.objects.create(user=owner, title="Leave questions")
    Message.objects.create(conversation=conversation, role="user", content="How many days of leave?")
    return conversation


def assert_missing_scope(response, scope: str) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope" and error["type"] == "permission_error"
    assert f"'{scope}'" in error["message"] and error["param"] == scope
    assert f'scope="{scope}"' in response["WWW-Authenticate"]


def test_reading_conversations_needs_the_read_scope(client, owner, conversation):
    ask_only = bearer(owner, ["ask"])
    assert_missing_scope(client.get("/api/v1/conversations", **ask_only), "conversations:read")
    assert_missing_scope(client.get(f"/api/v1/conversations/{conversation.id}", **ask_only), "conversations:read")
    response = client.get(f"/api/v1/conversations/{conversation.id}/messages", **ask_only)
    assert_missing_scope(response, "conversations:read")
    assert "How many days" not in response.content.decode()

    reader = bearer(owner, ["conversations:read"])
    listed = client.get("/api/v1/conversations", **reader)
    assert listed.status_code == 200 and listed.json()["data"][0]["title"] == "Leave questions"
    assert client.get(f"/api/v1/conversations/{conversation.id}/messages", **reader).status_code == 200


def test_a_read_only_token_cannot_ask_start_or_delete(client, owner, conversation):
    reader = bearer(owner, ["conversations:read"])
    response = client.post(f"/api/v1/conversations/{conversation.id}/messages",
                           data=json.dumps({"content": "What is the vault code?"}), content_type="application/json",
                           **reader)
    assert_missing_scope(response, "ask")
    assert conversation.messages.count() == 1  # nothing was asked
    assert_missing_scope(client.post("/api/v1/conversations", data="{}", content_type="application/json", **reader),
                         "ask")
    assert_missing_scope(client.delete(f"/api/v1/conversations/{conversation.id}", **reader), "ask")
    assert Conversation.objects.filter(user=owner).count() == 1


def test_the_openai_compatible_endpoints_need_the_ask_scope(client, owner):
    reader = bearer(owner, ["conversations:read"])
    assert_missing_scope(client.get("/v1/models", **reader), "ask")
    response = client.post("/v1/chat/completions", content_type="application/json", **reader,
                           data=json.dumps({"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}))
    assert_missing_scope(response, "ask")
    assert not Conversation.objects.filter(user=owner).exists()
    assert client.get("/v1/models", **bearer(owner, ["ask"])).status_code == 200


def test_an_mcp_only_token_opens_neither_api(client, owner):
    mcp_only = bearer(owner, ["mcp"])
    assert client.get("/v1/models", **mcp_only).status_code == 403
    assert client.get("/api/v1/conversations", **mcp_only).status_code == 403


def test_the_page_ticks_read_and_ask_by_default_and_offers_mcp(client, owner):
    client.force_login(owner)
    body = client.get(reverse("tokens:list")).content.decode()
    assert 'name="scopes" value="conversations:read" checked' in body
    assert 'name="scopes" value="ask" checked' in body
    assert 'name="scopes" value="mcp">' in body  # offered, not ticked


def test_the_page_creates_a_token_with_the_ticked_scopes_and_lists_them(client, owner):
    client.force_login(owner)
    response = client.post(reverse("tokens:list"),
                           {"name": "Reader", "expires_in_days": "", "scopes": ["mcp", "conversations:read"]})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=owner)
    assert token.scopes == ["conversations:read", "mcp"]
    listed = client.get(reverse("tokens:list")).content.decode()
    row = listed[listed.index(f'data-token="{token.id}"'):]
    row = row[: row.index("</tr>")]
    assert '<code class="token-scope">conversations:read</code>' in row and ">mcp</code>" in row
    assert ">ask</code>" not in row


def test_creating_a_token_with_no_scope_says_what_to_fix(client, owner):
    client.force_login(owner)
    response = client.post(reverse("tokens:list"), {"name": "Nothing", "expires_in_days": ""})
    assert response.status_code == 400
    assert "Choose at least one thing the token may do" in response.content.decode()
    assert not ApiToken.objects.exists()
    with pytest.raises(InvalidTokenInput, match="Unknown scope: admin"):
        api_token_create(user=owner, name="x", scopes=["ask", "admin"])


def test_tokens_made_before_scopes_existed_get_read_and_ask(owner):
    """The data migration: an old token (no scopes) keeps working for what it did before."""
    old = ApiToken.objects.create(user=owner, name="old", token_prefix="ea_old", token_hash="0" * 64)
    assert old.scopes == []
    migration = importlib.import_module("assistant.accounts.migrations.0002_token_scopes_and_revocation_reason")
    migration.give_existing_tokens_read_and_ask(django_apps, None)
    old.refresh_from_db()
    assert old.scopes == ["conversations:read", "ask"]


def test_the_page_says_everything_each_scope_grants(client, owner):
    """The read scope also opens conversations shared with the owner and the libraries a
    conversation is pinned to; the ask scope lists the owner's libraries: the boxes say so."""
    client.force_login(owner)
    body = client.get(reverse("tokens:list")).content.decode()
    assert "Read your conversations, their messages and the libraries they are pinned to, " \
           "and the conversations colleagues share with you" in body
    assert "pin them to libraries, list the libraries you may read" in body
    french = client.get(reverse("tokens:list"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "les conversations que vos collègues partagent avec vous" in french


def _documented_endpoints() -> dict[str, set[str]]:
    """docs/api.md's scope table: scope -> {"GET /api/v1/shared/{id}", ...}."""
    table = {}
    for line in API_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[a-z:]+`", cells[0]):
            table[cells[0].strip("`")] = set(re.findall(r"`((?:GET|POST|PUT|DELETE) /[^`]+)`", cells[2]))
    return table


def _route_as_documented(prefix: str, route: str) -> str:
    return prefix + re.sub(r"<(?:\w+:)?\w+>", "{id}", route)


def test_the_api_docs_list_every_endpoint_under_the_scope_it_needs():
    documented = _documented_endpoints()
    assert set(documented) == set(SCOPES)  # every scope documented, none invented
    checked = 0
    for prefix, patterns in (("/api/v1/", api_urls.native), ("/v1/", api_urls.openai)):
        for pattern in patterns:
            route = str(pattern.pattern)
            if route.endswith("/"):
                continue  # the same view with a trailing slash
            path = _route_as_documented(prefix, route)
            scope = pattern.callback.token_scope
            needs = scope.items() if isinstance(scope, dict) else None
            if needs is None:  # one scope for every method: documented with the methods it serves
                assert any(entry.endswith(" " + path) for entry in documented[scope]), (path, scope)
                assert not any(entry.endswith(" " + path) for other, entries in documented.items()
                               if other != scope for entry in entries), (path, scope)
            else:
                for method, needed in needs:
                    assert f"{method} {path}" in documented[needed], (method, path, needed)
            checked += 1
    assert checked >= 10
