"""Stored citations are re-checked against the reader's access every time they are shown.

An answer keeps the title, location and quoted passage of each source it cited. When the
reader later loses access (leaves a group), the chat page, the answer stream's replay and the
APIs show that citation only as an unlabeled "source no longer available" marker. Server file
paths (where a folder connector's files live) are never shown to non-staff readers.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import AsyncClient
from django.urls import reverse

from assistant.accounts.tokens import api_token_create
from assistant.chat.models import Attachment, Conversation, Message
from assistant.chat.openai_api import MODEL_ID
from assistant.rag.citations import finalize_answer
from assistant.rag.retrieval import Passage
from connectors.models import Chunk, Connector, Document
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault, serve_fake_llm

TITLE = "Salary bands 2026"
SERVER_PATH = "/srv/data/hr/salary-bands-2026.pdf"
PASSAGE = "Band C engineers earn between 61,000 and 74,000 euros a year. Bonuses are capped at 8 percent."
ANSWER = "Band C engineers earn between 61,000 and 74,000 euros a year [1]."
UNAVAILABLE = "Source no longer available"


@pytest.fixture
def salary_bands(db, engineering) -> Document:
    connector = Connector.objects.create(name="HR share", kind="folder", config={"path": "/srv/data/hr"})
    document = Document.objects.create(
        connector=connector, external_id="salary-bands-2026.pdf", title=TITLE, location=SERVER_PATH,
        text=PASSAGE, content_hash="x", acl_groups=["engineering"],
    )
    Chunk.objects.create(
        document=document, connector=connector, ordinal=0, text=PASSAGE, start_char=0, end_char=len(PASSAGE),
        token_count=12, embedding=[0.0] * settings.EMBEDDING_DIMENSIONS, acl_groups=["engineering"],
    )
    return document


def answer_citing(user, document: Document) -> Message:
    """A conversation of `user` whose stored answer cites `document` (as the pipeline saves it)."""
    chunk = document.chunks.first()
    passage = Passage(
        n=1, chunk_id=chunk.id if chunk else 1, document_id=str(document.id), title=document.title,
        location=document.location, url=document.url, connector=document.connector.name, text=document.text,
        start_char=0, end_char=len(document.text),
    )
    rendered, citations = finalize_answer(ANSWER, [passage])
    assert citations and citations[0]["location"] == SERVER_PATH  # stored as retrieval gave it
    conversation = Conversation.objects.create(user=user, title="Pay")
    question = Message.objects.create(conversation=conversation, role="user", content="What does band C earn?")
    return Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content=ANSWER, rendered_html=rendered,
        citations=citations, status=Message.Status.COMPLETE,
    )


def chat_page(client, user, answer: Message) -> str:
    client.force_login(user)
    response = client.get(reverse("chat:conversation", args=[answer.conversation_id]))
    assert response.status_code == 200
    return response.content.decode()


def replay(user, answer: Message) -> dict:
    """The `done` event of the answer's stream, which replays a stored answer."""

    async def run():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(reverse("chat:api_answer_stream", args=[answer.id]))
        assert response.status_code == 200
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    events = {}
    for block in async_to_sync(run)().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events[lines["event"]] = json.loads(lines["data"])
    return events["done"]


def api_messages(client, user, answer: Message) -> list[dict]:
    token = api_token_create(user=user, name="test")[1]
    response = client.get(f"/api/v1/conversations/{answer.conversation_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    return response.json()["messages"]


def sources_of(html: str) -> str:
    """The page's list of sources for the answer (title, location, quoted passage)."""
    start = html.index('<ol class="sources"')
    return html[start: html.index("</ol>", start)]


# --- a reader who leaves the group -----------------------------------------------------------


@pytest.mark.django_db
def test_the_chat_page_shows_a_citation_the_reader_lost_as_an_unlabeled_marker(
    client, owner, engineering, salary_bands
):
    answer = answer_citing(owner, salary_bands)
    before = chat_page(client, owner, answer)
    assert TITLE in sources_of(before) and PASSAGE in sources_of(before)

    owner.groups.remove(engineering)
    html = chat_page(client, owner, answer)
    assert TITLE not in html and SERVER_PATH not in html
    assert PASSAGE not in sources_of(html)  # the quoted passage
    assert str(salary_bands.id) not in html  # no link to it either
    assert UNAVAILABLE in sources_of(html)
    assert 'class="cite cite-unavailable" data-n="1"' in html  # the [1] chip has no title or link


@pytest.mark.django_db
def test_a_teammate_still_in_the_group_keeps_the_citation_in_their_own_conversation(
    client, owner, teammate, engineering, salary_bands
):
    mine, theirs = answer_citing(owner, salary_bands), answer_citing(teammate, salary_bands)
    owner.groups.remove(engineering)
    assert TITLE not in chat_page(client, owner, mine)
    html = chat_page(client, teammate, theirs)
    assert TITLE in html and PASSAGE in sources_of(html) and UNAVAILABLE not in sources_of(html)


@pytest.mark.django_db
def test_an_outsider_never_gets_the_conversation_or_its_replay(client, owner, outsider, salary_bands):
    answer = answer_citing(owner, salary_bands)
    client.force_login(outsider)
    assert client.get(reverse("chat:conversation", args=[answer.conversation_id])).status_code == 404
    assert client.get(reverse("chat:api_answer_stream", args=[answer.id])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_answer_streams_replay_hides_a_citation_the_reader_lost(owner, engineering, salary_bands):
    answer = answer_citing(owner, salary_bands)
    assert replay(owner, answer)["citations"][0]["title"] == TITLE

    owner.groups.remove(engineering)
    done = replay(owner, answer)
    text = json.dumps(done)
    assert TITLE not in text and SERVER_PATH not in text and PASSAGE not in text
    assert str(salary_bands.id) not in text
    assert done["citations"] == [{"n": 1, "available": False}]
    assert 'cite-unavailable" data-n="1"' in done["html"]


@pytest.mark.django_db
def test_the_json_api_hides_a_citation_the_reader_lost(client, owner, engineering, salary_bands):
    answer = answer_citing(owner, salary_bands)
    owner.groups.remove(engineering)
    messages = api_messages(client, owner, answer)
    text = json.dumps(messages)
    assert messages[1]["citations"] == []
    assert TITLE not in text and SERVER_PATH not in text and PASSAGE not in json.dumps(messages[1]["citations"])


@pytest.mark.django_db
def test_a_removed_attachments_passage_is_no_longer_shown(client, owner):
    conversation = Conversation.objects.create(user=owner, title="Notes")
    attachment = Attachment.objects.create(
        conversation=conversation, name="orion-secret-notes.md", media_type="text/markdown", size=10,
        text="Project Orion ships to Lyon in March.",
    )
    passage = Passage(
        n=1, chunk_id=1, document_id=str(attachment.id), title=attachment.name, location=attachment.name, url="",
        connector="Attached file", text=attachment.text, start_char=0, end_char=len(attachment.text),
        kind="attachment",
    )
    rendered, citations = finalize_answer("Project Orion ships to Lyon in March [1].", [passage])
    question = Message.objects.create(conversation=conversation, role="user", content="When does Orion ship?")
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="Orion ships in March [1].",
        rendered_html=rendered, citations=citations,
    )
    assert "orion-secret-notes.md" in sources_of(chat_page(client, owner, answer))
    attachment.delete()
    html = chat_page(client, owner, answer)
    assert "orion-secret-notes.md" not in html and UNAVAILABLE in sources_of(html)


# --- server paths ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_non_staff_reader_never_sees_a_server_path(client, owner, salary_bands):
    answer = answer_citing(owner, salary_bands)
    html = chat_page(client, owner, answer)
    assert SERVER_PATH not in html and "/srv/data" not in html
    assert TITLE in sources_of(html) and "HR share" in sources_of(html)  # title and connector instead
    assert "/srv/data" not in json.dumps(replay(owner, answer))
    citation = api_messages(client, owner, answer)[1]["citations"][0]
    assert citation["title"] == TITLE and citation["connector"] == "HR share" and citation["location"] == ""
    page = client.get(reverse("chat:document", args=[salary_bands.id])).content.decode()
    assert TITLE in page and "HR share" in page and "/srv/data" not in page


@pytest.mark.django_db
def test_staff_see_where_a_document_lives(client, staff, salary_bands):
    salary_bands.acl_public = True
    salary_bands.save()
    client.force_login(staff)
    page = client.get(reverse("chat:document", args=[salary_bands.id])).content.decode()
    assert SERVER_PATH in page


@pytest.fixture
def fake_llm(settings):
    yield from serve_fake_llm(settings)


@pytest.mark.django_db(transaction=True)
def test_the_openai_api_never_shows_a_server_path(client, tmp_path, owner, engineering, fake_llm):
    index_kitchen_and_vault(tmp_path, engineering)
    token = api_token_create(user=owner, name="test")[1]
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "What is the server room vault code?"}]}
    response = client.post("/v1/chat/completions", json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    data = response.json()
    assert SECRET in data["choices"][0]["message"]["content"]
    assert [c["title"] for c in data["citations"]] == ["Vault access"]
    assert str(tmp_path) not in json.dumps(data)
