"""Answer generation against the real model server, and when it is down."""

from __future__ import annotations


import pytest
from asgiref.sync import async_to_sync

from assistant.chat.answering import answer_events, get_chat_client
from assistant.chat.models import Conversation, Message
from assistant.chat.services import question_submit
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.conftest import free_port


def collect(message, user) -> list[tuple[str, dict]]:
    async def run():
        return [event async for event in answer_events(message, user)]

    return async_to_sync(run)()


@pytest.fixture
def indexed_folder(db, tmp_path, engineering):
    public_dir, secret_dir = tmp_path / "public", tmp_path / "secret"
    public_dir.mkdir()
    secret_dir.mkdir()
    (public_dir / "kitchen.md").write_text("# Kitchen rules\n\nThe dishwasher on floor 3 runs at 6 pm every day.\n")
    (secret_dir / "vault.md").write_text("# Vault access\n\nThe server room vault code is 9038.\n")
    public = Connector.objects.create(name="Public", kind="folder", config={"path": str(public_dir)}, is_public=True)
    secret = Connector.objects.create(name="Secret", kind="folder", config={"path": str(secret_dir)})
    secret.groups.add(engineering)
    for connector in (public, secret):
        sync_run_execute(SyncRun.objects.create(connector=connector).id)


@pytest.mark.llm
@pytest.mark.django_db(transaction=True)
def test_the_answer_streams_and_is_saved_with_its_citations(indexed_folder, teammate, use_llm):
    conversation = Conversation.objects.create(user=teammate)
    _, answer = question_submit(conversation=conversation, content="What is the server room vault code?")
    events = collect(answer, teammate)
    names = [name for name, _ in events]
    assert names.count("token") > 1 and names[-1] == "done", events[-3:]
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE
    assert answer.content and answer.first_token_ms is not None
    assert answer.content == "".join(data["text"] for name, data in events if name == "token").strip()


@pytest.mark.llm
@pytest.mark.django_db(transaction=True)
def test_an_outsider_never_gets_a_restricted_document_in_the_answer(indexed_folder, outsider, use_llm):
    conversation = Conversation.objects.create(user=outsider)
    _, answer = question_submit(conversation=conversation, content="What is the server room vault code?")
    events = collect(answer, outsider)
    done = events[-1][1]
    assert "9038" not in done["html"]
    assert all(c["title"] != "Vault access" for c in done["citations"])
    answer.refresh_from_db()
    assert "9038" not in answer.content


@pytest.mark.django_db(transaction=True)
def test_a_stopped_model_server_gives_a_clear_error_and_keeps_the_question(indexed_folder, owner, settings):
    settings.LLM_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings.LLM_CONNECT_RETRIES = 1
    get_chat_client.cache_clear()
    try:
        conversation = Conversation.objects.create(user=owner)
        question, answer = question_submit(conversation=conversation, content="When does the dishwasher run?")
        events = collect(answer, owner)
    finally:
        get_chat_client.cache_clear()
    assert events[-1][0] == "error"
    assert "model server is not reachable" in events[-1][1]["message"]
    assert events[-1][1]["retryable"] is True
    answer.refresh_from_db()
    assert answer.status == Message.Status.ERROR and "not reachable" in answer.error
    assert Message.objects.filter(id=question.id, content="When does the dishwasher run?").exists()


@pytest.mark.django_db(transaction=True)
def test_a_finished_answer_is_replayed_not_generated_again(owner):
    conversation = Conversation.objects.create(user=owner)
    answer = Message.objects.create(
        conversation=conversation, role="assistant", status="complete", content="Done.", rendered_html="<p>Done.</p>"
    )
    events = collect(answer, owner)
    assert events == [("done", events[0][1])]
    assert events[0][1]["html"] == "<p>Done.</p>"


def test_stop_request_is_noticed_while_streaming(db, owner):
    from assistant.chat.services import answer_stop

    conversation = Conversation.objects.create(user=owner)
    answer = Message.objects.create(conversation=conversation, role="assistant", status="streaming")
    assert answer_stop(message=answer) is True
    answer.refresh_from_db()
    assert answer.status == Message.Status.STOPPED
    assert answer_stop(message=answer) is False  # already stopped


