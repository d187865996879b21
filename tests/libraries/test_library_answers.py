"""Libraries in answers: a pinned conversation searches only its libraries; an assistant may
include a library, and still only readers it is shared with get its passages; a library
unshared after pinning finds nothing (never everything)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse

from assistant.chat.answering import answer_events
from assistant.chat.library_pins import conversation_libraries_set
from assistant.chat.models import Assistant, Conversation
from assistant.chat.services import question_submit
from connectors.libraries import library_share_set
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.chat.fakes import FakeChatClient, use_fake_client
from tests.libraries.conftest import build_library

QUESTION = "What do the Zephyr and Orion plans say about the launch budget?"


def ask(conversation, user, monkeypatch) -> FakeChatClient:
    fake = use_fake_client(monkeypatch, FakeChatClient())
    _, answer = question_submit(conversation=conversation, content=QUESTION)

    async def run():
        return [event async for event in answer_events(answer, user)]

    events = async_to_sync(run)()
    assert events[-1][0] == "done", events[-1]
    return fake


@pytest.fixture
def sources(owner, tmp_path):
    """Two libraries of the owner, and a public company handbook that mentions both projects."""
    zephyr = build_library(owner, "Zephyr", {"zephyr.md": "# Zephyr plan\n\nThe Zephyr launch budget is 40,000 euros.\n"})
    orion = build_library(owner, "Orion", {"orion.md": "# Orion plan\n\nThe Orion launch budget is 95,000 euros.\n"})
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "budgets.md").write_text("# Budget rules\n\nZephyr and Orion launch budgets need the CFO's approval.\n")
    handbook = Connector.objects.create(name="Handbook", kind="folder", config={"path": str(folder)}, is_public=True)
    sync_run_execute(SyncRun.objects.create(connector=handbook).id)
    return zephyr, orion, handbook


def test_an_unpinned_conversation_searches_every_source_the_user_may_see(sources, owner, monkeypatch):
    prompt = ask(Conversation.objects.create(user=owner), owner, monkeypatch).user_turn()
    assert "40,000" in prompt and "95,000" in prompt and "CFO" in prompt


def test_a_pinned_conversation_retrieves_only_from_its_libraries(sources, owner, monkeypatch):
    zephyr, orion, _ = sources
    conversation = Conversation.objects.create(user=owner)
    conversation_libraries_set(conversation=conversation, library_ids=[str(zephyr.id)])
    prompt = ask(conversation, owner, monkeypatch).user_turn()
    assert "40,000" in prompt
    assert "95,000" not in prompt and "CFO" not in prompt  # neither the other library nor the handbook

    conversation_libraries_set(conversation=conversation, library_ids=[str(zephyr.id), str(orion.id)])
    prompt = ask(conversation, owner, monkeypatch).user_turn()
    assert "40,000" in prompt and "95,000" in prompt and "CFO" not in prompt


def test_a_pinned_library_unshared_since_finds_nothing_not_everything(sources, owner, teammate, monkeypatch):
    zephyr, _, _ = sources
    library_share_set(library=zephyr, group_names=["engineering"], usernames=[])
    conversation = Conversation.objects.create(user=teammate)
    conversation_libraries_set(conversation=conversation, library_ids=[str(zephyr.id)])
    assert "40,000" in ask(conversation, teammate, monkeypatch).user_turn()

    library_share_set(library=zephyr, group_names=[], usernames=[])
    prompt = ask(conversation, teammate, monkeypatch).user_turn()
    assert "40,000" not in prompt and "CFO" not in prompt and "95,000" not in prompt


def test_an_assistant_that_includes_a_library_answers_from_it_only_for_its_readers(
    sources, owner, teammate, outsider, monkeypatch
):
    zephyr, _, _ = sources
    library_share_set(library=zephyr, group_names=["engineering"], usernames=[])
    assistant = Assistant.objects.create(name="Zephyr helper")
    assistant.connectors.add(zephyr)
    prompt = ask(Conversation.objects.create(user=teammate, assistant=assistant), teammate, monkeypatch).user_turn()
    assert "40,000" in prompt and "CFO" not in prompt and "95,000" not in prompt
    # the same assistant for someone the library is not shared with: nothing from it
    prompt = ask(Conversation.objects.create(user=outsider, assistant=assistant), outsider, monkeypatch).user_turn()
    assert "40,000" not in prompt and "95,000" not in prompt


def test_the_assistant_admin_offers_only_libraries_the_admin_may_read(client, sources, owner, staff):
    zephyr, orion, handbook = sources
    library_share_set(library=zephyr, group_names=[], usernames=[staff.username])
    client.force_login(staff)
    page = client.get(reverse("admin:chat_assistant_add")).content.decode()
    assert "Zephyr (library of owner)" in page
    assert "Orion" not in page  # private to its owner
    assert "Handbook" in page
