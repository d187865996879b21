"""Files attached to a conversation: checked, parsed, private to their owner, and given to the model
first (whole when they fit, else their best chunks)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from assistant.chat import answering
from assistant.chat.answering import answer_events
from assistant.chat.attachments import attachment_add, attachment_passages
from assistant.chat.models import Attachment, AttachmentChunk, Conversation, Message
from assistant.chat.services import InvalidInput, question_submit
from assistant.rag.retrieval import embed_query
from inference.chat_client import StreamDelta

NOTE = (
    "# Project Orion launch note\n\n"
    "The Orion satellite launches from Kourou on 14 March.\n\n"
    "Mission control for Orion is staffed by Priya Raman's team in building K7.\n"
)


def login(client, user):
    client.force_login(user)
    return client


def upload(client, conversation, name: str, content: bytes, content_type: str = "text/markdown"):
    return client.post(
        reverse("chat:api_attachment_add", args=[conversation.id]),
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
    )


def submit(client, conversation, content: str, attachment_ids):
    return client.post(
        reverse("chat:api_question_submit", args=[conversation.id]),
        json.dumps({"content": content, "attachment_ids": attachment_ids}),
        content_type="application/json",
    )


def collect(message, user) -> list[tuple[str, dict]]:
    async def run():
        return [event async for event in answer_events(message, user)]

    return async_to_sync(run)()


@pytest.fixture
def conversation(owner) -> Conversation:
    return Conversation.objects.create(user=owner, title="Launch")


@pytest.fixture
def attached(client, owner, conversation) -> Attachment:
    response = upload(login(client, owner), conversation, "orion.md", NOTE.encode())
    assert response.status_code == 201, response.content
    return Attachment.objects.get(id=response.json()["id"])


class FakeClient:
    """Stands in for the model server at unit level: records the prompt, answers with a citation."""

    def __init__(self, reply: str):
        self.reply = reply
        self.prompts: list[list[dict]] = []

    def list_models(self) -> list[dict]:
        return []

    async def stream(self, messages, **params):
        self.prompts.append(messages)
        for word in self.reply.split(" "):
            yield StreamDelta(text=word + " ", finish_reason=None)


# --- upload ---------------------------------------------------------------------------------


def test_owner_attaches_a_markdown_file(client, owner, conversation, attached):
    assert attached.name == "orion.md" and attached.media_type == "text/markdown"
    assert attached.size == len(NOTE.encode()) and attached.message is None
    assert "launches from Kourou on 14 March" in attached.text
    chunks = list(attached.chunks.all())
    assert chunks and all(len(c.embedding) == 384 for c in chunks)
    assert all(c.text == attached.text[c.start_char : c.end_char] for c in chunks)


def test_it_refuses_a_binary_file_renamed_pdf_with_a_reason(client, owner, conversation):
    response = upload(login(client, owner), conversation, "report.pdf", b"MZ\x90\x00" + bytes(200), "application/pdf")
    assert response.status_code == 400
    assert "not a PDF" in response.json()["error"]
    assert not Attachment.objects.exists()


def test_it_refuses_a_file_over_the_size_limit(client, owner, conversation, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    response = upload(login(client, owner), conversation, "big.txt", b"word " * 500, "text/plain")
    assert response.status_code == 400
    assert "limit" in response.json()["error"] and "1 KB" in response.json()["error"]
    assert not Attachment.objects.exists()


def test_it_refuses_an_unsupported_type_and_a_missing_file(client, owner, conversation):
    login(client, owner)
    response = upload(client, conversation, "tool.exe", b"MZ\x90\x00", "application/octet-stream")
    assert response.status_code == 400 and ".exe" in response.json()["error"]
    response = client.post(reverse("chat:api_attachment_add", args=[conversation.id]))
    assert response.status_code == 400 and "Choose a file" in response.json()["error"]


def test_a_malformed_file_fails_alone(client, owner, conversation):
    login(client, owner)
    broken = upload(client, conversation, "broken.pdf", b"%PDF-1.7\nthis is not really a pdf\n", "application/pdf")
    assert broken.status_code == 400
    assert "not a valid pdf" in broken.json()["error"].lower()
    good = upload(client, conversation, "orion.md", NOTE.encode())
    assert good.status_code == 201
    assert list(Attachment.objects.values_list("name", flat=True)) == ["orion.md"]


def test_the_service_raises_invalid_input_for_an_empty_file(conversation):
    with pytest.raises(InvalidInput, match="empty"):
        attachment_add(conversation=conversation, upload=SimpleUploadedFile("empty.md", b"", "text/markdown"))


# --- permissions ----------------------------------------------------------------------------


def test_it_rejects_outsider_with_404_on_view_delete_and_upload(client, outsider, conversation, attached):
    login(client, outsider)
    assert client.get(reverse("chat:attachment", args=[attached.id])).status_code == 404
    assert client.post(reverse("chat:api_attachment_remove", args=[attached.id])).status_code == 404
    assert upload(client, conversation, "mine.md", b"# Mine\n\nHello.\n").status_code == 404
    assert Attachment.objects.filter(conversation=conversation).count() == 1


def test_it_never_links_another_users_attachment(client, outsider, attached):
    own = Conversation.objects.create(user=outsider)
    response = submit(login(client, outsider), own, "What does the note say?", [str(attached.id)])
    assert response.status_code == 400
    attached.refresh_from_db()
    assert attached.message is None
    assert not Message.objects.filter(conversation=own).exists()


def test_it_never_links_an_attachment_of_another_conversation(client, owner, attached):
    other = Conversation.objects.create(user=owner)
    assert submit(login(client, owner), other, "And here?", [str(attached.id)]).status_code == 400
    assert submit(client, other, "And here?", ["not-a-uuid"]).status_code == 400
    attached.refresh_from_db()
    assert attached.message is None


def test_owner_views_and_removes_an_attachment(client, owner, attached):
    login(client, owner)
    chunk = attached.chunks.first()
    response = client.get(reverse("chat:attachment", args=[attached.id]) + f"?chunk={chunk.id}")
    body = response.content.decode()
    assert response.status_code == 200
    assert '<mark id="passage">' in body and "launches from Kourou" in body and "orion.md" in body
    assert client.post(reverse("chat:api_attachment_remove", args=[attached.id])).json() == {"deleted": True}
    assert not Attachment.objects.exists() and not AttachmentChunk.objects.exists()


# --- sending with a question ----------------------------------------------------------------


def test_sent_files_are_linked_to_the_question_and_shown_as_chips(client, owner, conversation, attached):
    response = submit(client, conversation, "When does Orion launch?", [str(attached.id)])
    assert response.status_code == 201
    data = response.json()
    assert [a["name"] for a in data["user_message"]["attachments"]] == ["orion.md"]
    attached.refresh_from_db()
    assert str(attached.message_id) == data["user_message"]["id"]
    body = client.get(conversation.get_absolute_url()).content.decode()
    assert 'class="attachment-chip"' in body and "orion.md" in body
    assert reverse("chat:attachment", args=[attached.id]) in body


def test_a_file_not_yet_sent_stays_in_the_composer_after_a_reload(client, owner, conversation, attached):
    body = client.get(conversation.get_absolute_url()).content.decode()
    composer = body[body.index('id="attachments-pending"') :]
    assert f'data-id="{attached.id}"' in composer[: composer.index("</ul>")]


# --- context --------------------------------------------------------------------------------


def test_a_small_attachment_goes_into_the_context_whole(conversation, attached):
    question = "When does the Orion satellite launch?"
    passages, used = attachment_passages(
        conversation=conversation, question_embedding=embed_query(question), material_tokens=1000, first_n=3
    )
    assert len(passages) == 1
    p = passages[0]
    assert p.n == 3 and p.text == attached.text.strip() and p.kind == "attachment"
    assert p.connector == "Attached file" and p.location == "orion.md" and p.document_id == str(attached.id)
    assert p.document_url.startswith(reverse("chat:attachment", args=[attached.id]))
    assert 0 < used <= 1000


def test_a_large_attachment_gives_only_its_relevant_chunks(conversation, settings):
    settings.CHUNK_TOKENS, settings.CHUNK_OVERLAP_TOKENS = 60, 0
    topics = [
        "The finance team closes the books on the fifth working day of each month.",
        "Visitors must sign in at the front desk and wear a badge at all times.",
        "The coffee machines on every floor are descaled on Monday mornings.",
        "Laptops are replaced every three years by the IT service desk.",
        "Parking permits for the underground garage are issued by facilities.",
        "Expense reports above five hundred euros need a director's approval.",
    ]
    paragraphs = [f"Section {i + 1}. {topics[i % len(topics)]} This rule applies to all offices." for i in range(30)]
    paragraphs[17] = "Section 18. The submarine cafeteria serves lobster bisque every Friday at noon."
    text = "\n\n".join(paragraphs) + "\n"
    attachment = attachment_add(
        conversation=conversation, upload=SimpleUploadedFile("policies.md", text.encode(), "text/markdown")
    )
    assert attachment.chunks.count() > 5
    question = "What does the submarine cafeteria serve on Fridays?"
    passages, used = attachment_passages(
        conversation=conversation, question_embedding=embed_query(question), material_tokens=150
    )
    given = "\n".join(p.text for p in passages)
    assert "lobster bisque" in given
    assert len(given) < len(text) / 3 and used <= 150
    assert [p.n for p in passages] == list(range(1, len(passages) + 1))
    assert all(attachment.text[p.start_char : p.end_char] == p.text for p in passages)


@pytest.mark.django_db(transaction=True)
def test_the_prompt_carries_the_whole_attachment_first_and_the_answer_cites_it(
    client, owner, conversation, attached, monkeypatch
):
    fake = FakeClient("The Orion satellite launches from Kourou on 14 March [1].")
    monkeypatch.setattr(answering, "get_chat_client", lambda: fake)
    _, answer = question_submit(
        conversation=conversation, content="When does the Orion satellite launch?", attachment_ids=[attached.id]
    )
    events = collect(answer, owner)
    assert events[-1][0] == "done"
    prompt = fake.prompts[0][-1]["content"]
    assert attached.text.strip() in prompt
    assert '<source id="1" title="orion.md"' in prompt
    citations = events[-1][1]["citations"]
    assert citations and citations[0]["connector"] == "Attached file"
    assert citations[0]["document_url"].startswith(reverse("chat:attachment", args=[attached.id]))


@pytest.mark.llm
@pytest.mark.django_db(transaction=True)
def test_the_model_answers_from_the_attachment_and_cites_it(client, owner, conversation, attached, use_llm):
    _, answer = question_submit(
        conversation=conversation, content="Where does the Orion satellite launch from?", attachment_ids=[attached.id]
    )
    events = collect(answer, owner)
    assert events[-1][0] == "done", events[-1]
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE
    assert any(c["connector"] == "Attached file" and c["title"] == "orion.md" for c in answer.citations), (
        answer.content,
        answer.citations,
    )


# --- limits: rate, size, pathological content --------------------------------------------------


def _forget_attachment_counts(user):
    from assistant.accounts import ratelimit

    ratelimit.reset("attachment", str(user.pk), ratelimit.Rate(2, 600))


def test_uploads_past_the_rate_limit_get_429_with_the_time_to_wait(client, owner, teammate, conversation, settings):
    settings.ATTACHMENT_RATE_LIMIT = (2, 600)
    for user in (owner, teammate):
        _forget_attachment_counts(user)
    login(client, owner)
    for n in (1, 2):
        assert upload(client, conversation, f"note-{n}.md", NOTE.encode()).status_code == 201
    refused = upload(client, conversation, "note-3.md", NOTE.encode())
    assert refused.status_code == 429
    body = refused.json()
    assert "faster than allowed" in body["error"] and "Wait" in body["error"]
    assert 0 < body["retry_after"] <= 600 and refused["Retry-After"] == str(body["retry_after"])
    assert Attachment.objects.filter(conversation=conversation).count() == 2
    # Another user's uploads are counted apart.
    theirs = Conversation.objects.create(user=teammate, title="Theirs")
    assert upload(login(client, teammate), theirs, "note.md", NOTE.encode()).status_code == 201


def test_a_request_announcing_more_than_the_limit_is_refused_before_its_body_is_parsed(
    client, owner, conversation, settings, monkeypatch
):
    from django.http import multipartparser

    settings.UPLOAD_MAX_BYTES = 100 * 1024
    settings.ATTACHMENT_RATE_LIMIT = None

    def never(self):
        raise AssertionError("the multipart body was parsed")

    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", never)
    response = upload(login(client, owner), conversation, "big.txt", b"word " * 100_000, "text/plain")
    assert response.status_code == 400
    assert "over the limit of 100 KB" in response.json()["error"]
    assert not Attachment.objects.exists()


def test_a_12mb_csv_is_refused_as_too_long_without_being_built_whole(conversation, settings, monkeypatch):
    """The reported file: 12 MB of `a,`. The parser stops at the attachment's character cap,
    so its 24 million characters of text are never built, nor handed to the chunker."""
    from assistant.chat import attachments

    settings.UPLOAD_MAX_BYTES = 25 * 1024 * 1024
    cut: list[int] = []
    real_chunk_text = attachments.chunk_text
    monkeypatch.setattr(attachments, "chunk_text", lambda text, **kw: cut.append(len(text)) or real_chunk_text(text, **kw))
    with pytest.raises(InvalidInput) as refused:
        attachment_add(conversation=conversation, upload=SimpleUploadedFile("columns.csv", b"a," * (6 * 1024 * 1024)))
    assert "too long to attach" in str(refused.value)
    assert cut == []
    assert not Attachment.objects.exists()


def test_a_file_over_the_chunk_cap_is_refused_when_cutting_reaches_the_cap(conversation, monkeypatch):
    from assistant.chat import attachments
    from connectors import chunking

    counted = {"words": 0}
    real_count = chunking.approx_token_count

    def counting(text):
        counted["words"] += 1
        return real_count(text)

    monkeypatch.setattr(chunking, "approx_token_count", counting)
    monkeypatch.setattr(attachments, "MAX_CHUNKS", 3)
    monkeypatch.setattr(attachments, "CHARS_PER_CHUNK_TOKEN", 10_000, raising=False)  # only the chunk cap here
    long_note = ("Mission control is staffed around the clock. " * 30_000).encode()  # 210,000 words, 1.4M chars
    with pytest.raises(InvalidInput, match="too long to attach"):
        attachment_add(conversation=conversation, upload=SimpleUploadedFile("long.md", long_note))
    assert 0 < counted["words"] < 70_000  # cutting stopped at the cap: about one window of words looked at
    assert not Attachment.objects.exists()
