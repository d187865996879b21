"""Stop ends the answer in the app and generation at the model server."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from assistant.chat.answering import answer_events, get_chat_client
from assistant.chat.models import Conversation, Message
from assistant.chat.services import answer_stop, question_submit
from tests.chat.endless_llm import MOST_WORDS, EndlessModel


@pytest.fixture
def endless_model(settings):
    model = EndlessModel()
    settings.LLM_BASE_URL = model.base_url
    settings.LLM_MODEL = "endless"
    get_chat_client.cache_clear()
    yield model
    get_chat_client.cache_clear()
    model.close()


@pytest.mark.django_db(transaction=True)
def test_stop_ends_generation_at_the_model_server(owner, endless_model):
    conversation = Conversation.objects.create(user=owner)
    _, answer = question_submit(conversation=conversation, content="Tell me everything.")

    async def run():
        events = []
        async for name, data in answer_events(answer, owner):
            events.append((name, data))
            if sum(1 for n, _ in events if n == "token") == 5:
                await sync_to_async(answer_stop)(message=answer)  # what the Stop button calls
        return events

    events = async_to_sync(run)()
    assert events[-1][0] == "done" and events[-1][1]["status"] == "stopped"
    assert endless_model.client_left.wait(30), "the model server never saw the app hang up"
    assert endless_model.finished.wait(30)
    produced = endless_model.produced
    assert produced < MOST_WORDS  # it stopped producing: the loop ended on the closed connection
    answer.refresh_from_db()
    assert answer.status == Message.Status.STOPPED
    streamed = "".join(data["text"] for name, data in events if name == "token").strip()
    assert answer.content == streamed and streamed.startswith("word0 word1 word2 word3 word4")


@pytest.mark.django_db(transaction=True)
def test_a_reader_who_goes_away_ends_generation_too(owner, endless_model):
    """The browser tab closed: the app stops reading the model and keeps what was written."""
    conversation = Conversation.objects.create(user=owner)
    _, answer = question_submit(conversation=conversation, content="Tell me everything.")

    async def run():
        stream = answer_events(answer, owner)
        tokens = 0
        async for name, _ in stream:
            tokens += name == "token"
            if tokens == 5:
                break
        await stream.aclose()

    async_to_sync(run)()
    assert endless_model.client_left.wait(30)
    answer.refresh_from_db()
    assert answer.status == Message.Status.STOPPED and answer.content.startswith("word0")
