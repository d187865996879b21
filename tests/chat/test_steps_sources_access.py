"""An answer's steps (tool calls) and its sources list are shown as the reader may see them now.

An answer stores every document it was given (Message.sources) and each tool call with the
documents its result showed (Message.steps). When the reader later loses access to a document,
it disappears from the sources under the answer and from every step's sources, on the chat page,
in the answer stream's `done` event and in the JSON API; a step that named it keeps its place
without the title. An attached file is only ever shown to its conversation's owner.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.urls import reverse

from assistant.chat.answering import answer_events, message_payload
from assistant.chat.models import Attachment, Conversation, Message
from assistant.chat.services import question_submit
from assistant.rag.citations import finalize_answer
from assistant.rag.retrieval import Passage
from assistant.rag.sources import sources_record
from connectors.models import Chunk, Connector, Document
from tests.chat.fake_llm import SECRET, index_kitchen_and_vault, serve_fake_llm
from tests.chat.test_citation_access import api_messages, chat_page, replay

SECRET_TITLE = "Salary bands 2026"
SECRET_TEXT = "Band C engineers earn between 61,000 and 74,000 euros a year. Bonuses are capped at 8 percent."
PUBLIC_TITLE = "Travel policy 2024"
PUBLIC_TEXT = "Trains are booked in second class for trips under four hours."


def indexed(title: str, text: str, *, groups: list[str], public: bool = False) -> Document:
    connector = Connector.objects.create(
        name=f"{title} share", kind="folder", config={"path": "/srv/data/" + title.replace(" ", "-")},
        is_public=public,
    )
    document = Document.objects.create(
        connector=connector, external_id=f"{title}.md", title=title, location=f"/srv/data/{title}.md", text=text,
        content_hash="x", acl_groups=groups, acl_public=public,
    )
    Chunk.objects.create(
        document=document, connector=connector, ordinal=0, text=text, start_char=0, end_char=len(text),
        token_count=12, embedding=[0.0] * settings.EMBEDDING_DIMENSIONS, acl_groups=groups, acl_public=public,
    )
    return document


def passage_of(n: int, document: Document) -> Passage:
    return Passage(
        n=n, chunk_id=document.chunks.first().id, document_id=str(document.id), title=document.title,
        location=document.location, url=document.url, connector=document.connector.name, text=document.text,
        start_char=0, end_char=len(document.text),
    )


def step_over(document: Document, n: int = 1) -> dict:
    """A finished search step whose result showed `document`, as the loop stores it."""
    return {
        "id": f"call_{n}", "step": n, "tool": "search_knowledge", "status": "done",
        "arguments": {"query": f"what does {document.title} say"},
        "label": f"Reading “{document.title}”…", "summary": "Found 1 passage in 1 document",
        "sources": [{"title": document.title, "url": reverse("chat:document", args=[document.id]),
                     "connector": document.connector.name, "document_id": str(document.id), "kind": "document"}],
        "error": "", "duration_ms": 12,
    }


@pytest.fixture
def answer(db, owner, engineering) -> Message:
    """The owner's answer drawn from a restricted and a public document, one step over each."""
    secret = indexed(SECRET_TITLE, SECRET_TEXT, groups=["engineering"])
    public = indexed(PUBLIC_TITLE, PUBLIC_TEXT, groups=[], public=True)
    passages = [passage_of(1, secret), passage_of(2, public)]
    content = "Band C engineers earn between 61,000 and 74,000 euros a year [1]."
    rendered, citations = finalize_answer(content, passages)
    conversation = Conversation.objects.create(user=owner, title="Pay and travel")
    question = Message.objects.create(conversation=conversation, role="user", content="Pay and trains?")
    return Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content=content, rendered_html=rendered,
        citations=citations, sources=sources_record(passages, citations),
        steps=[step_over(secret, 1), step_over(public, 2)], status=Message.Status.COMPLETE,
    )


def titles(entries: list[dict]) -> list[str]:
    return [e["title"] for e in entries]


@pytest.mark.django_db
def test_the_sources_list_puts_the_cited_document_first_and_marks_it(owner, answer):
    payload = message_payload(answer, owner)
    assert titles(payload["sources"]) == [SECRET_TITLE, PUBLIC_TITLE]
    assert [s["cited"] for s in payload["sources"]] == [True, False]
    assert payload["sources"][1]["passage"] == PUBLIC_TEXT
    assert [titles(step["sources"]) for step in payload["steps"]] == [[SECRET_TITLE], [PUBLIC_TITLE]]


@pytest.mark.django_db
def test_a_document_the_reader_lost_disappears_from_sources_and_steps(owner, engineering, answer):
    owner.groups.remove(engineering)
    payload = message_payload(answer, owner)
    assert titles(payload["sources"]) == [PUBLIC_TITLE]
    assert [titles(step["sources"]) for step in payload["steps"]] == [[], [PUBLIC_TITLE]]
    # the step that read it is still there, without its title or its passage
    assert len(payload["steps"]) == 2 and payload["steps"][0]["label"] == "Reading “…”…"
    assert SECRET_TITLE not in json.dumps(payload) and SECRET_TEXT not in json.dumps(payload)


@pytest.mark.django_db
def test_the_chat_page_drops_a_lost_document_from_the_sources_and_the_steps(client, owner, engineering, answer):
    before = chat_page(client, owner, answer)
    assert 'class="answer-sources"' in before and 'class="steps"' in before
    assert SECRET_TITLE in before and PUBLIC_TITLE in before

    owner.groups.remove(engineering)
    html = chat_page(client, owner, answer)
    assert SECRET_TITLE not in html and SECRET_TEXT not in html
    assert PUBLIC_TITLE in html and PUBLIC_TEXT in html
    assert str(answer.steps[0]["sources"][0]["document_id"]) not in html  # no link to it either
    assert html.count('class="step"') == 2


@pytest.mark.django_db
def test_the_steps_and_sources_speak_french(client, owner, answer):
    client.force_login(owner)
    html = client.get(reverse("chat:conversation", args=[answer.conversation_id]), HTTP_ACCEPT_LANGUAGE="fr").content
    html = html.decode()
    assert "2 étapes" in html and "Citée" in html
    # and the strings the page's scripts use for steps that arrive live
    assert 'data-steps-other="{n} étapes"' in html and 'data-working="Réflexion…"' in html


@pytest.mark.django_db(transaction=True)
def test_the_replay_and_the_json_api_drop_a_lost_document(client, owner, engineering, answer):
    owner.groups.remove(engineering)
    done = replay(owner, answer)
    assert titles(done["sources"]) == [PUBLIC_TITLE]
    assert SECRET_TITLE not in json.dumps(done["steps"])
    api_answer = next(m for m in api_messages(client, owner, answer) if m["role"] == "assistant")
    assert titles(api_answer["sources"]) == [PUBLIC_TITLE]
    assert api_answer["sources"][0]["url"].startswith("http://testserver/chat/")
    assert SECRET_TITLE not in json.dumps(api_answer)


@pytest.mark.django_db
def test_a_teammate_still_in_the_group_keeps_the_document(owner, teammate, engineering, answer):
    owner.groups.remove(engineering)
    answer.conversation.user = teammate  # the same answer in a conversation of someone still allowed
    assert titles(message_payload(answer, teammate)["sources"]) == [SECRET_TITLE, PUBLIC_TITLE]


@pytest.mark.django_db
def test_an_attached_file_is_listed_to_its_owner_only_and_gone_once_removed(owner, teammate):
    conversation = Conversation.objects.create(user=owner, title="Notes")
    attachment = Attachment.objects.create(
        conversation=conversation, name="orion-notes.md", media_type="text/markdown", size=10,
        text="Project Orion ships to Lyon in March.",
    )
    passage = Passage(
        n=1, chunk_id=1, document_id=str(attachment.id), title=attachment.name, location=attachment.name, url="",
        connector="Attached file", text=attachment.text, start_char=0, end_char=len(attachment.text),
        kind="attachment",
    )
    step = {"id": "call_1", "step": 1, "tool": "read_document", "status": "done", "arguments": {},
            "label": "Reading “orion-notes.md”…", "summary": "", "error": "", "duration_ms": 3,
            "sources": [{"title": attachment.name, "url": "/elsewhere", "connector": "Attached file",
                         "document_id": str(attachment.id), "kind": "attachment"}]}
    question = Message.objects.create(conversation=conversation, role="user", content="When?")
    answer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="In March.",
        sources=sources_record([passage], []), steps=[step], status=Message.Status.COMPLETE,
    )
    mine = message_payload(answer, owner)
    assert titles(mine["sources"]) == ["orion-notes.md"] and mine["sources"][0]["kind"] == "attachment"
    # a link is only ever to our own viewer of that file
    assert mine["steps"][0]["sources"][0]["url"] == reverse("chat:attachment", args=[attachment.id])
    assert "orion-notes.md" not in json.dumps(message_payload(answer, teammate))

    attachment.delete()
    assert message_payload(answer, owner)["sources"] == []
    assert message_payload(answer, owner)["steps"][0]["sources"] == []


# --- the retrieve-then-answer path stores the sources ---------------------------------------


@pytest.fixture
def fake_llm(settings):
    yield from serve_fake_llm(settings)


@pytest.mark.django_db(transaction=True)
def test_a_retrieved_answer_is_saved_with_its_sources_cited_first(tmp_path, owner, engineering, fake_llm):
    index_kitchen_and_vault(tmp_path, engineering)
    conversation = Conversation.objects.create(user=owner)
    _, answer = question_submit(conversation=conversation, content="What is the server room vault code?")

    async def run():
        return [event async for event in answer_events(answer, owner)]

    done = async_to_sync(run)()[-1][1]
    answer.refresh_from_db()
    assert SECRET in answer.content
    assert answer.sources[0]["title"] == "Vault access" and answer.sources[0]["cited"] is True
    assert {s["title"] for s in answer.sources} == {"Vault access", "Kitchen rules"}  # uncited ones too
    assert all(not s["cited"] for s in answer.sources[1:])
    assert all(len(s["passage"]) <= 301 and s["url"].startswith("/chat/") for s in answer.sources)
    assert titles(done["sources"]) == titles(answer.sources) and done["steps"] == []
