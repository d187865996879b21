"""Memory, opt-in per user: "remember that ...", the model's `remember` and `forget` calls, the memories
in the prompt of that user only, and the page to list, edit and delete them."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from assistant.chat.answering import answer_events
from assistant.chat.memory import memory_add, memory_command_parse, memory_enable_set, memory_enabled
from assistant.chat.assistants import assistant_default
from assistant.chat.models import Conversation, Memory
from assistant.chat.services import question_submit
from tests.chat.fakes import FakeChatClient, use_fake_client
from tests.chat.scripted_llm import Call, Say


def ask(user, text: str, conversation=None) -> list[tuple[str, dict]]:
    conversation = conversation or Conversation.objects.create(user=user)
    _, answer = question_submit(conversation=conversation, content=text)

    async def run():
        return [event async for event in answer_events(answer, user)]

    return async_to_sync(run)()


def answer_text(events) -> str:
    return "".join(data["text"] for name, data in events if name == "token")


@pytest.mark.parametrize(
    "text,fact",
    [
        ("remember that my team is Platform", "My team is Platform"),
        ("Please remember: I prefer short answers.", "I prefer short answers"),
        ("Remember I work in the Lyon office", "I work in the Lyon office"),
        ("keep in mind that I am on call on Fridays", "I am on call on Fridays"),
        ("Souviens-toi que je travaille à Lyon", "Je travaille à Lyon"),
        ("retiens que mon équipe est Data", "Mon équipe est Data"),
        ("Remember when we moved offices?", None),
        ("What should I remember about the leave policy", None),
        ("Rememberable facts about leave", None),
        ("remember that", None),
    ],
)
def test_it_recognises_an_explicit_remember_command(text, fact):
    assert memory_command_parse(text) == fact


def test_memory_is_off_until_the_user_turns_it_on(owner):
    assert memory_enabled(user=owner) is False
    memory_enable_set(user=owner, enabled=True)
    assert memory_enabled(user=owner) is True


def test_with_memory_off_remember_that_is_not_saved_and_says_how_to_turn_it_on(owner, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    events = ask(owner, "remember that my team is Platform")
    assert "Memory is off" in answer_text(events) and events[-1][0] == "done"
    assert not Memory.objects.exists()
    assert fake.calls == []


def test_with_memory_on_remember_that_is_saved_without_asking_the_model(owner, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    memory_enable_set(user=owner, enabled=True)
    events = ask(owner, "Remember that my team is Platform.")
    assert "My team is Platform" in answer_text(events)
    assert events[-1][1]["status"] == "complete"
    assert list(Memory.objects.values_list("user", "text", "origin")) == [(owner.id, "My team is Platform", "command")]
    assert fake.calls == []


def test_memories_are_in_the_system_prompt_of_that_user_only(owner, outsider, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    memory_enable_set(user=owner, enabled=True)
    memory_enable_set(user=outsider, enabled=True)
    memory_add(user=owner, text="My team is Platform")
    ask(owner, "Which team am I in?")
    assert "My team is Platform" in fake.system_prompt(0)
    ask(outsider, "Which team am I in?")
    assert "Platform" not in fake.system_prompt(1)


def test_turning_memory_off_keeps_memories_out_of_the_prompt(owner, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    memory_enable_set(user=owner, enabled=True)
    memory_add(user=owner, text="My team is Platform")
    memory_enable_set(user=owner, enabled=False)
    ask(owner, "Which team am I in?")
    assert "Platform" not in fake.system_prompt()


@pytest.mark.django_db(transaction=True)
def test_the_model_may_save_a_memory_with_a_remember_call_when_tools_are_on(owner, scripted):
    model = scripted([Call.of(("remember", {"fact": "I lead the data team"})), Say("Got it, I will remember that.")])
    memory_enable_set(user=owner, enabled=True)
    events = ask(owner, "I lead the data team, keep that for later")
    assert answer_text(events) == "Got it, I will remember that."
    assert list(Memory.objects.values_list("text", "origin")) == [("I lead the data team", "tool")]
    assert model.offered(0)[-2:] == ["remember", "forget"]  # after the assistant's knowledge tools
    assert model.tool_results(1) == [("remember", "Saved: I lead the data team")]
    step = [data for name, data in events if name == "step"][-1]
    assert step["status"] == "done" and step["summary"] == "Remembered “I lead the data team”"


@pytest.mark.django_db(transaction=True)
def test_the_model_may_forget_a_memory_when_asked(owner, scripted):
    memory_enable_set(user=owner, enabled=True)
    memory_add(user=owner, text="I lead the data team")
    memory_add(user=owner, text="I work in Lyon")
    model = scripted([Call.of(("forget", {"memory": "Lyon"})), Say("Forgotten.")])
    ask(owner, "Forget where I work")
    assert list(Memory.objects.values_list("text", flat=True)) == ["I lead the data team"]
    assert model.tool_results(1) == [("forget", "Deleted: I work in Lyon")]


@pytest.mark.django_db(transaction=True)
def test_with_memory_off_the_memory_tools_are_not_offered(owner, scripted):
    model = scripted([Say("Hello.")])
    ask(owner, "I lead the data team, keep that for later")
    offered = model.offered(0)
    assert offered and "remember" not in offered and "forget" not in offered
    assert not Memory.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_assistant_without_tools_and_memory_off_sends_no_tools(owner, scripted):
    assistant = assistant_default()
    assistant.tools = []
    assistant.save()
    model = scripted([Say("Hello.")])
    ask(owner, "I lead the data team, keep that for later")
    assert "tools" not in model.requests[0]  # no tools at all: the plain path, and never an empty array
    assert not Memory.objects.exists()


def test_no_tools_are_offered_when_the_server_does_not_support_them(owner, monkeypatch, settings):
    settings.LLM_TOOLS = False
    fake = use_fake_client(monkeypatch, FakeChatClient())
    memory_enable_set(user=owner, enabled=True)
    ask(owner, "Which team am I in?")
    assert "tools" not in fake.calls[0][1]


def test_the_same_fact_twice_is_kept_once_and_empty_or_long_ones_are_refused(owner):
    from assistant.chat.services import InvalidInput

    memory_enable_set(user=owner, enabled=True)
    first = memory_add(user=owner, text="My team is Platform")
    assert memory_add(user=owner, text="my team is platform") == first
    with pytest.raises(InvalidInput, match="empty"):
        memory_add(user=owner, text="   ")
    with pytest.raises(InvalidInput, match="500"):
        memory_add(user=owner, text="x" * 501)


# --- the page ----------------------------------------------------------------------------------


@pytest.fixture
def memory(owner) -> Memory:
    memory_enable_set(user=owner, enabled=True)
    return memory_add(user=owner, text="My team is Platform")


def test_the_user_menu_toggles_memory_and_comes_back(client, owner):
    client.force_login(owner)
    body = client.get(reverse("chat:home")).content.decode()
    assert 'id="memory-toggle"' in body and 'aria-checked="false"' in body
    response = client.post(reverse("chat:memory_toggle"), {"enabled": "true", "next": "/chat/"})
    assert response.status_code == 302 and response["Location"] == "/chat/"
    assert memory_enabled(user=owner)
    response = client.post(
        reverse("chat:memory_toggle"), json.dumps({"enabled": False}), content_type="application/json"
    )
    assert response.json() == {"enabled": False} and not memory_enabled(user=owner)


def test_the_toggle_never_redirects_to_another_site(client, owner):
    client.force_login(owner)
    response = client.post(reverse("chat:memory_toggle"), {"enabled": "true", "next": "https://evil.example/"})
    assert response["Location"] == reverse("chat:memories")


def test_the_memories_page_lists_only_the_users_own(client, owner, outsider, memory):
    memory_enable_set(user=outsider, enabled=True)
    memory_add(user=outsider, text="Outsider secret plan")
    client.force_login(owner)
    body = client.get(reverse("chat:memories")).content.decode()
    assert "My team is Platform" in body and "Outsider secret plan" not in body


def test_the_user_edits_adds_and_deletes_memories(client, owner, memory):
    client.force_login(owner)
    client.post(reverse("chat:memory_edit", args=[memory.id]), {"text": "My team is Data"})
    memory.refresh_from_db()
    assert memory.text == "My team is Data"
    client.post(reverse("chat:memory_add"), {"text": "I work in Lyon"})
    assert set(Memory.objects.values_list("text", flat=True)) == {"My team is Data", "I work in Lyon"}
    client.post(reverse("chat:memory_delete", args=[memory.id]))
    assert list(Memory.objects.values_list("text", flat=True)) == ["I work in Lyon"]


def test_an_empty_edit_is_refused_with_a_message(client, owner, memory):
    client.force_login(owner)
    response = client.post(reverse("chat:memory_edit", args=[memory.id]), {"text": "  "}, follow=True)
    assert "cannot be empty" in response.content.decode()
    memory.refresh_from_db()
    assert memory.text == "My team is Platform"


@pytest.mark.parametrize("name", ["chat:memory_edit", "chat:memory_delete"])
def test_it_rejects_outsider_touching_another_users_memory_with_404(client, outsider, memory, name):
    client.force_login(outsider)
    assert client.post(reverse(name, args=[memory.id]), {"text": "hacked"}).status_code == 404
    memory.refresh_from_db()
    assert memory.text == "My team is Platform"
