"""Automatic titles: the model names the conversation after the first answer; a user's title stays."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from assistant.chat import services
from assistant.chat.models import Conversation
from assistant.chat.titles import title_clean, title_generate
from inference.chat_client import ModelServerError


class FakeClient:
    def __init__(self, reply: str | Exception):
        self.reply = reply
        self.prompts = []

    async def complete(self, messages, **params):
        self.prompts.append(messages)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


@pytest.mark.parametrize(
    "raw,title",
    [
        ('"Annual leave entitlement"', "Annual leave entitlement"),
        ("Title: expense claims for taxis.", "Expense claims for taxis"),
        ("**Laptop encryption policy**\nThis conversation is about...", "Laptop encryption policy"),
        ("", ""),
        ("This is a very long rambling sentence that is certainly not a usable title at all", ""),
    ],
)
def test_the_models_suggestion_is_cleaned_into_a_title(raw, title):
    assert title_clean(raw) == title


def test_a_suggestion_that_invents_numbers_or_asks_back_is_refused():
    question = "How many days of paid leave do employees get?"
    assert title_clean("Employees get 12 months of leave", question) == ""
    assert title_clean("How many days of leave?", question) == ""
    assert title_clean("2018-04-30 2:57:19.67", question) == ""
    assert title_clean("Leave in 2026", "Leave rules for 2026?") == "Leave in 2026"


def generate(conversation, client):
    return async_to_sync(title_generate)(
        client=client, conversation=conversation, question="How many days of leave?", answer="27 days [1]."
    )


@pytest.mark.django_db(transaction=True)
def test_the_first_exchange_gets_a_short_title_from_the_model(owner):
    conversation = Conversation.objects.create(user=owner)
    services.question_submit(conversation=conversation, content="How many days of leave do I get as a new hire?")
    client = FakeClient("Leave for new hires")
    assert generate(conversation, client) == "Leave for new hires"
    conversation.refresh_from_db()
    assert conversation.title_source == Conversation.TitleSource.MODEL
    assert "How many days of leave?" in client.prompts[0][-1]["content"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_model_keeps_the_trimmed_question_as_title(owner):
    conversation = Conversation.objects.create(user=owner)
    question = "What is the policy on working from another country for more than two weeks in a row?"
    services.question_submit(conversation=conversation, content=question)
    assert generate(conversation, FakeClient(ModelServerError("down"))) == question[:59].rstrip() + "…"
    conversation.refresh_from_db()
    assert conversation.title_source == Conversation.TitleSource.MODEL  # final: not asked again


@pytest.mark.django_db(transaction=True)
def test_a_title_the_user_typed_is_never_overwritten(owner):
    conversation = Conversation.objects.create(user=owner)
    services.question_submit(conversation=conversation, content="Leave?")
    services.conversation_rename(conversation=Conversation.objects.get(id=conversation.id), title="My leave")
    assert generate(conversation, FakeClient("Annual leave")) == "My leave"
