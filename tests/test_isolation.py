"""A sweep over every web route: another user's objects and staff pages are 404 for an outsider.

Routes are read from the URL configuration, so an endpoint added later is covered without
editing this test. For each route that names a private object (a conversation, message,
attachment, memory or API token of the owner; a document the outsider may not see) or lies
in a staff-only area, a signed-in outsider gets 404 (or 405 for a method the route does not
take), never 403 (which would confirm the object exists), a page, or a redirect — and
nothing changes.
"""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from assistant.chat.models import Attachment, Conversation, ConversationShare, Memory, Message
from connectors.libraries import library_create
from connectors.models import Connector, Document, SyncRun

#: URL parameters that name an object private to the owner, or hidden from the outsider.
PRIVATE = {"conversation_id", "message_id", "attachment_id", "memory_id", "token_id", "document_id", "share_id",
           "library_id"}
#: Namespaces / route names for staff only.
STAFF_ONLY_NAMESPACES = {"connectors"}
STAFF_ONLY_NAMES = {"chat:feedback_list", "chat:feedback_export", "sources_moved"}
#: Token-authenticated JSON APIs: swept with the outsider's own API token (the second test).
SKIPPED_NAMESPACES = {"admin", "api", "openai"}
TOKEN_NAMESPACES = {"api", "openai"}


def routes(patterns=None, namespace=""):
    """(qualified name, parameter names) of every named route."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}".strip(":") if entry.namespace else namespace
            yield from routes(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            pattern = entry.pattern
            params = set(getattr(pattern, "converters", {}) or {}) | set(pattern.regex.groupindex)
            yield (f"{namespace}:{entry.name}" if namespace else entry.name), params


@pytest.fixture
def world(owner, engineering, settings, tmp_path):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    conversation = Conversation.objects.create(user=owner, title="Owner's plans")
    question = Message.objects.create(conversation=conversation, role="user", content="Secret question")
    answer = Message.objects.create(conversation=conversation, role="assistant", content="Secret answer",
                                    parent=question)
    attachment = Attachment.objects.create(conversation=conversation, message=question, name="plan.md",
                                           media_type="text/markdown", size=10, text="Secret plan")
    memory = Memory.objects.create(user=owner, text="My salary is 100k")
    connector = Connector.objects.create(name="Eng", kind="folder", config={"path": "/srv/eng"})
    connector.groups.add(engineering)
    document = Document.objects.create(connector=connector, external_id="a.md", title="Roadmap", text="Secret",
                                       content_hash="x", acl_groups=["engineering"])
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    # shared with the owner's team, which the outsider is not in: still a 404 for them everywhere
    share = ConversationShare.objects.create(conversation=conversation, group=engineering, created_by=owner)
    values = {
        "conversation_id": conversation.id, "message_id": answer.id, "attachment_id": attachment.id,
        "memory_id": memory.id, "document_id": document.id, "connector_id": connector.id, "run_id": run.id,
        "kind": "folder", "action": "sync", "rest": f"{connector.id}/",
        # a query result under the owner's answer, an evaluation case: ids the outsider may guess
        "query_id": uuid.uuid4(), "case_id": uuid.uuid4(), "profile_id": uuid.uuid4(), "share_id": share.id,
        # the owner's library, private to them (shared with nobody)
        "library_id": library_create(owner=owner, name="Owner's library").id,
    }
    try:
        from assistant.accounts.models import ApiToken

        values["token_id"] = ApiToken.objects.create(
            user=owner, name="cli", token_prefix="ea_x", token_hash=hashlib.sha256(b"t").hexdigest()
        ).id
    except ImportError:  # pragma: no cover - API tokens not installed
        pass
    return values


def snapshot():
    return (
        list(Conversation.objects.values_list("id", "title")), Message.objects.count(), Attachment.objects.count(),
        list(Memory.objects.values_list("text", flat=True)), Connector.objects.count(), SyncRun.objects.count(),
        ConversationShare.objects.count(),
        sorted(Connector.objects.values_list("name", flat=True)),
        sorted(str(pk) for pk in Conversation.objects.filter(libraries__isnull=False).values_list("id", flat=True)),
    )


def test_an_outsider_gets_404_on_every_private_object_and_staff_page(client, outsider, world):
    client.force_login(outsider)
    before = snapshot()
    checked = []
    for name, params in routes():
        namespace = name.split(":", 1)[0] if ":" in name else ""
        if namespace in SKIPPED_NAMESPACES:
            continue
        staff_only = namespace in STAFF_ONLY_NAMESPACES or name in STAFF_ONLY_NAMES
        if not (params & PRIVATE or staff_only):
            continue
        missing = params - set(world)
        assert not missing, f"{name}: add a value for {missing} to the world fixture"
        url = reverse(name, kwargs={p: world[p] for p in params})
        posted = client.post(url, {"title": "x", "text": "x", "content": "x"})
        statuses = {client.get(url).status_code, posted.status_code}
        assert statuses <= {404, 405} and 404 in statuses, (name, url, statuses)
        checked.append(name)
    assert snapshot() == before
    # the sweep really covered the private routes of the product
    for expected in ("chat:conversation", "chat:api_answer_stream", "chat:attachment", "chat:document",
                     "chat:shared_conversation", "chat:api_shares", "chat:api_share_revoke",
                     "connectors:list", "connectors:document", "connectors:audit", "libraries:detail",
                     "libraries:share", "libraries:upload", "libraries:ask", "chat:libraries"):
        assert expected in checked, expected


def test_an_outsiders_api_token_gets_404_on_every_private_object_of_the_apis(client, outsider, world):
    from assistant.accounts.tokens import api_token_create

    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=outsider, name='sweep')[1]}"}
    body = '{"content": "x", "title": "x", "libraries": []}'
    before = snapshot()
    checked = []
    for name, params in routes():
        if name.split(":", 1)[0] not in TOKEN_NAMESPACES or not params & PRIVATE:
            continue
        missing = params - set(world)
        assert not missing, f"{name}: add a value for {missing} to the world fixture"
        url = reverse(name, kwargs={p: world[p] for p in params})
        statuses = {client.get(url, **headers).status_code}
        for method in ("post", "put", "patch", "delete"):
            statuses.add(getattr(client, method)(url, body, content_type="application/json", **headers).status_code)
        assert statuses <= {404, 405} and 404 in statuses, (name, url, statuses)
        checked.append(name)
    # and the lists name none of the owner's objects: their conversations, library, shared conversation
    for name in ("api:conversations", "api:libraries", "api:shared"):
        listed = client.get(reverse(name), **headers)
        assert listed.status_code == 200 and listed.json()["data"] == [], (name, listed.content)
    assert snapshot() == before
    for expected in ("api:conversation", "api:messages", "api:conversation_libraries", "api:shared_conversation"):
        assert expected in checked, expected
