"""Assistants: the default one, picking one per conversation, and what it changes in the answer
(instructions in the system prompt, only its connectors searched, its model parameters)."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from assistant.chat.answering import answer_events
from assistant.chat.assistants import (
    DefaultAssistantProtected,
    assistant_default,
    assistant_delete,
    assistant_make_default,
)
from assistant.chat.models import Assistant, Conversation
from assistant.chat.services import question_submit
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.chat.fakes import FakeChatClient, use_fake_client


def collect(message, user, **kwargs) -> list[tuple[str, dict]]:
    async def run():
        return [event async for event in answer_events(message, user, **kwargs)]

    return async_to_sync(run)()


@pytest.fixture
def two_connectors(db, tmp_path):
    hr_dir, it_dir = tmp_path / "hr", tmp_path / "it"
    hr_dir.mkdir()
    it_dir.mkdir()
    (hr_dir / "leave.md").write_text("# Leave policy\n\nEmployees get 27 days of paid leave per year.\n")
    (it_dir / "laptops.md").write_text("# Laptop policy\n\nLaptops are replaced every 3 years; leave them at IT.\n")
    hr = Connector.objects.create(name="HR handbook", kind="folder", config={"path": str(hr_dir)}, is_public=True)
    it = Connector.objects.create(name="IT wiki", kind="folder", config={"path": str(it_dir)}, is_public=True)
    for connector in (hr, it):
        sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return hr, it


@pytest.fixture
def hr_assistant(two_connectors) -> Assistant:
    hr, _ = two_connectors
    assistant = Assistant.objects.create(
        name="HR helper", description="Leave, pay and benefits",
        instructions="Always answer like a friendly HR officer.",
        temperature=0.7, max_tokens=64, model_name="hr-model",
    )
    assistant.connectors.add(hr)
    return assistant


def test_a_default_assistant_exists_after_migrating(db):
    defaults = Assistant.objects.filter(is_default=True)
    assert defaults.count() == 1
    assert assistant_default() == defaults.get()


def test_the_default_assistant_cannot_be_deleted(db):
    with pytest.raises(DefaultAssistantProtected):
        assistant_delete(assistant=assistant_default())
    assert Assistant.objects.filter(is_default=True).exists()


def test_admin_offers_no_delete_for_the_default_but_does_for_others(client, staff, db):
    other = Assistant.objects.create(name="Sales helper")
    client.force_login(staff)
    default = assistant_default()
    assert client.get(reverse("admin:chat_assistant_delete", args=[default.id])).status_code == 403
    response = client.post(reverse("admin:chat_assistant_delete", args=[other.id]), {"post": "yes"})
    assert response.status_code == 302
    assert not Assistant.objects.filter(id=other.id).exists()
    assert Assistant.objects.filter(id=default.id).exists()


def test_admin_bulk_delete_keeps_the_default(client, staff, db):
    Assistant.objects.create(name="Sales helper")
    client.force_login(staff)
    client.post(
        reverse("admin:chat_assistant_changelist"),
        {"action": "delete_assistants", "_selected_action": [str(a.id) for a in Assistant.objects.all()]},
    )
    assert list(Assistant.objects.values_list("is_default", flat=True)) == [True]


def test_making_another_assistant_default_leaves_exactly_one(db):
    other = Assistant.objects.create(name="Sales helper")
    assistant_make_default(assistant=other)
    assert list(Assistant.objects.filter(is_default=True)) == [other]


def test_the_picker_lists_active_assistants_with_the_conversations_one_selected(client, owner, hr_assistant):
    Assistant.objects.create(name="Retired helper", is_active=False)
    conversation = Conversation.objects.create(user=owner, assistant=hr_assistant)
    client.force_login(owner)
    body = client.get(conversation.get_absolute_url()).content.decode()
    assert 'id="assistant-select"' in body
    assert f'<option value="{hr_assistant.id}" selected' in body
    assert "General assistant" in body and "Retired helper" not in body


def test_the_user_switches_the_assistant_of_a_conversation(client, owner, hr_assistant):
    conversation = Conversation.objects.create(user=owner)
    client.force_login(owner)
    response = client.post(
        reverse("chat:api_conversation_assistant", args=[conversation.id]),
        json.dumps({"assistant_id": str(hr_assistant.id)}), content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["name"] == "HR helper"
    conversation.refresh_from_db()
    assert conversation.assistant == hr_assistant


def test_an_inactive_or_unknown_assistant_is_refused_with_a_clear_message(client, owner, db):
    retired = Assistant.objects.create(name="Retired helper", is_active=False)
    conversation = Conversation.objects.create(user=owner)
    client.force_login(owner)
    for value in (str(retired.id), "not-an-id"):
        response = client.post(
            reverse("chat:api_conversation_assistant", args=[conversation.id]),
            json.dumps({"assistant_id": value}), content_type="application/json",
        )
        assert response.status_code == 400
        assert "pick another one" in response.json()["error"]


def test_it_rejects_outsider_switching_another_users_conversation(client, owner, outsider, hr_assistant):
    conversation = Conversation.objects.create(user=owner)
    client.force_login(outsider)
    response = client.post(
        reverse("chat:api_conversation_assistant", args=[conversation.id]),
        json.dumps({"assistant_id": str(hr_assistant.id)}), content_type="application/json",
    )
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.assistant is None


def test_a_new_conversation_starts_with_the_assistant_picked_in_the_composer(client, owner, hr_assistant):
    client.force_login(owner)
    created = client.post(
        reverse("chat:api_conversation_create"), json.dumps({"assistant_id": str(hr_assistant.id)}),
        content_type="application/json",
    )
    assert created.status_code == 201
    assert Conversation.objects.get(id=created.json()["id"]).assistant == hr_assistant


def test_the_answer_uses_the_assistants_instructions_parameters_and_only_its_connectors(
    owner, hr_assistant, monkeypatch
):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    conversation = Conversation.objects.create(user=owner, assistant=hr_assistant)
    _, answer = question_submit(conversation=conversation, content="What does the leave policy say about laptops?")
    events = collect(answer, owner)
    assert events[-1][0] == "done"
    assert "friendly HR officer" in fake.system_prompt()
    assert "Leave policy" in fake.user_turn()
    assert "Laptop policy" not in fake.user_turn()  # the IT wiki is not this assistant's
    params = fake.calls[0][1]
    assert params["temperature"] == 0.7 and params["max_tokens"] <= 64 and params["model"] == "hr-model"
    answer.refresh_from_db()
    assert answer.model == "hr-model"


def test_the_default_assistant_searches_every_connector_the_user_may_see(owner, two_connectors, monkeypatch):
    fake = use_fake_client(monkeypatch, FakeChatClient())
    conversation = Conversation.objects.create(user=owner)
    _, answer = question_submit(conversation=conversation, content="What does the leave policy say about laptops?")
    collect(answer, owner)
    assert "Leave policy" in fake.user_turn() and "Laptop policy" in fake.user_turn()
    assert "friendly HR officer" not in fake.system_prompt()


def test_a_connector_still_in_its_first_sync_is_announced_before_the_answer(owner, two_connectors, tmp_path,
                                                                            monkeypatch):
    use_fake_client(monkeypatch, FakeChatClient())
    fresh = Connector.objects.create(name="Sales drive", kind="folder", config={"path": str(tmp_path)}, is_public=True)
    SyncRun.objects.create(connector=fresh, status=SyncRun.Status.RUNNING)
    conversation = Conversation.objects.create(user=owner)
    _, answer = question_submit(conversation=conversation, content="What are the sales targets?")
    events = collect(answer, owner, notices=True)
    assert events[0][0] == "notice"
    assert "Sales drive" in events[0][1]["message"] and "indexed" in events[0][1]["message"]
    assert events[-1][0] == "done"


def test_no_syncing_notice_for_a_connector_the_assistant_does_not_use(owner, hr_assistant, tmp_path, monkeypatch):
    use_fake_client(monkeypatch, FakeChatClient())
    fresh = Connector.objects.create(name="Sales drive", kind="folder", config={"path": str(tmp_path)}, is_public=True)
    SyncRun.objects.create(connector=fresh, status=SyncRun.Status.RUNNING)
    conversation = Conversation.objects.create(user=owner, assistant=hr_assistant)
    _, answer = question_submit(conversation=conversation, content="How many days of leave?")
    assert [name for name, _ in collect(answer, owner, notices=True)][0] != "notice"


def test_no_syncing_notice_about_a_source_the_user_may_not_see(outsider, engineering, tmp_path, monkeypatch, db):
    use_fake_client(monkeypatch, FakeChatClient())
    secret = Connector.objects.create(name="Secret lab", kind="folder", config={"path": str(tmp_path)})
    secret.groups.add(engineering)
    SyncRun.objects.create(connector=secret, status=SyncRun.Status.RUNNING)
    conversation = Conversation.objects.create(user=outsider)
    _, answer = question_submit(conversation=conversation, content="What is in the lab?")
    assert all("Secret lab" not in data.get("message", "") for _, data in collect(answer, outsider, notices=True))


def test_admin_defines_an_assistant_and_bad_parameters_say_what_to_fix(client, staff, two_connectors):
    hr, _ = two_connectors
    client.force_login(staff)
    form = {
        "name": "HR helper", "description": "Leave and pay", "instructions": "Be brief.", "connectors": [str(hr.id)],
        "temperature": "3", "max_tokens": "8", "model_name": "", "is_active": "on",
    }
    response = client.post(reverse("admin:chat_assistant_add"), form)
    body = response.content.decode()
    assert response.status_code == 200
    assert "between 0 and 2" in body and "at least 16 tokens" in body
    response = client.post(reverse("admin:chat_assistant_add"), {**form, "temperature": "0.3", "max_tokens": "200"})
    assert response.status_code == 302
    assistant = Assistant.objects.get(name="HR helper")
    assert list(assistant.connectors.all()) == [hr] and assistant.temperature == 0.3 and not assistant.is_default


def test_admin_cannot_deactivate_the_default_assistant(client, staff, db):
    default = assistant_default()
    client.force_login(staff)
    response = client.post(
        reverse("admin:chat_assistant_change", args=[default.id]),
        {"name": default.name, "description": "", "instructions": "", "temperature": "", "max_tokens": "",
         "model_name": ""},
    )
    assert response.status_code == 200 and "cannot be deactivated" in response.content.decode()
    default.refresh_from_db()
    assert default.is_active


def test_an_assistant_limited_to_a_group_is_offered_and_used_only_by_its_members(
    client, owner, outsider, engineering, hr_assistant, monkeypatch
):
    hr_assistant.groups.add(engineering)  # owner is in engineering, outsider is not
    client.force_login(outsider)
    page = client.get(reverse("chat:home")).content.decode()
    assert "HR helper" not in page and "General assistant" in page
    refused = client.post(
        reverse("chat:api_conversation_create"), json.dumps({"assistant_id": str(hr_assistant.id)}),
        content_type="application/json",
    )
    assert refused.status_code == 400 and "pick another one" in refused.json()["error"]

    client.force_login(owner)
    assert "HR helper" in client.get(reverse("chat:home")).content.decode()
    conversation = Conversation.objects.create(user=owner)
    switched = client.post(
        reverse("chat:api_conversation_assistant", args=[conversation.id]),
        json.dumps({"assistant_id": str(hr_assistant.id)}), content_type="application/json",
    )
    assert switched.status_code == 200

    # Leaving the group takes the assistant away, also from the conversation that had it.
    owner.groups.remove(engineering)
    fake = use_fake_client(monkeypatch, FakeChatClient())
    _, answer = question_submit(conversation=conversation, content="How many days of leave?")
    assert collect(answer, owner)[-1][0] == "done"
    assert "friendly HR officer" not in fake.system_prompt()
    answer.refresh_from_db()
    assert answer.model != "hr-model"


def test_admin_chooses_an_assistants_tools_from_the_registry(client, staff, agent_tools):
    client.force_login(staff)
    page = client.get(reverse("admin:chat_assistant_add")).content.decode()
    assert 'name="tools" value="lookup_note"' in page and 'name="tools" value="clock"' in page
    assert 'value="remember"' not in page  # memory tools follow each user's switch, not the admin's
    form = {"name": "Clock only", "description": "", "instructions": "", "tools": ["clock"], "temperature": "",
            "max_tokens": "", "model_name": "", "is_active": "on"}
    assert client.post(reverse("admin:chat_assistant_add"), form).status_code == 302
    assert Assistant.objects.get(name="Clock only").tools == ["clock"]
    response = client.post(reverse("admin:chat_assistant_add"), {**form, "name": "Bad", "tools": ["drop_tables"]})
    assert response.status_code == 200 and "drop_tables is not one of the available choices" in response.content.decode()
    assert not Assistant.objects.filter(name="Bad").exists()
