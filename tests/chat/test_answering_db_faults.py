"""A database that restarts while an answer streams: the answer is still saved, never left "streaming"."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError

from assistant.chat import answering
from assistant.chat.models import Conversation, Message


@pytest.fixture
def streaming_answer(transactional_db, owner) -> Message:
    conversation = Conversation.objects.create(user=owner)
    return Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING)


def flaky_save(monkeypatch, failures: int) -> list[int]:
    calls: list[int] = []
    real_save = Message.save

    def save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise OperationalError("terminating connection due to administrator command")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Message, "save", save)
    monkeypatch.setattr(answering, "SAVE_RETRY_DELAYS", (0.01,) * len(answering.SAVE_RETRY_DELAYS))
    return calls


def test_an_answer_is_saved_once_the_restarting_database_is_back(streaming_answer, monkeypatch):
    calls = flaky_save(monkeypatch, failures=2)
    async_to_sync(answering._save)(streaming_answer, content="The answer.", status=Message.Status.COMPLETE)
    assert len(calls) == 3
    stored = Message.objects.get(id=streaming_answer.id)
    assert (stored.status, stored.content) == (Message.Status.COMPLETE, "The answer.")


def test_a_database_that_stays_away_raises_after_the_retries(streaming_answer, monkeypatch):
    calls = flaky_save(monkeypatch, failures=100)
    with pytest.raises(OperationalError):
        async_to_sync(answering._save)(streaming_answer, content="x", status=Message.Status.COMPLETE)
    assert len(calls) == len(answering.SAVE_RETRY_DELAYS) + 1


def test_a_failed_stop_check_does_not_end_the_answer(streaming_answer, monkeypatch):
    class Broken:
        def values_list(self, *args, **kwargs):
            return self

        async def afirst(self):
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Message.objects, "filter", lambda **kwargs: Broken())
    assert async_to_sync(answering._stop_requested)(streaming_answer) is False
