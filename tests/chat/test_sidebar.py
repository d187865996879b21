"""The sidebar: date groups, pinning, search over titles and messages, delete with undo."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from assistant.chat import selectors, services
from assistant.chat.models import Conversation, Message
from assistant.chat.tasks import purge_deleted_conversations

NOW = timezone.make_aware(dt.datetime(2026, 11, 27, 15, 0))


def conversation_at(user, title, when, **fields) -> Conversation:
    conversation = Conversation.objects.create(user=user, title=title, **fields)
    Conversation.objects.filter(id=conversation.id).update(updated_at=when)
    conversation.refresh_from_db()
    return conversation


def labels(groups) -> list[tuple[str, list[str]]]:
    return [(g.label, [c.title for c in g.conversations]) for g in groups]


def test_conversations_are_grouped_by_last_activity(owner):
    conversation_at(owner, "this morning", NOW - dt.timedelta(hours=3))
    conversation_at(owner, "last night", NOW - dt.timedelta(days=1))
    conversation_at(owner, "monday", NOW - dt.timedelta(days=4))
    conversation_at(owner, "three weeks ago", NOW - dt.timedelta(days=21))
    conversation_at(owner, "in august", timezone.make_aware(dt.datetime(2026, 8, 3, 12, 0)))
    conversation_at(owner, "in july", timezone.make_aware(dt.datetime(2026, 7, 9, 12, 0)))
    assert labels(selectors.conversations_grouped(user=owner, now=NOW)) == [
        ("Today", ["this morning"]),
        ("Yesterday", ["last night"]),
        ("Previous 7 days", ["monday"]),
        ("Previous 30 days", ["three weeks ago"]),
        ("August 2026", ["in august"]),
        ("July 2026", ["in july"]),
    ]


def test_pinned_conversations_come_first_newest_pin_on_top(owner):
    old = conversation_at(owner, "old but important", NOW - dt.timedelta(days=90))
    recent = conversation_at(owner, "recent", NOW - dt.timedelta(hours=1))
    other = conversation_at(owner, "also pinned", NOW - dt.timedelta(days=2))
    services.conversation_pin(conversation=other, pinned=True)
    services.conversation_pin(conversation=old, pinned=True)
    groups = labels(selectors.conversations_grouped(user=owner, now=NOW))
    assert groups[0] == ("Pinned", ["old but important", "also pinned"])
    assert groups[1] == ("Today", ["recent"])
    services.conversation_pin(conversation=old, pinned=False)
    assert labels(selectors.conversations_grouped(user=owner, now=NOW))[-1][1] == ["old but important"]
    recent.refresh_from_db()


def test_pinning_does_not_change_recency(owner):
    conversation = conversation_at(owner, "x", NOW - dt.timedelta(days=3))
    services.conversation_pin(conversation=conversation, pinned=True)
    conversation.refresh_from_db()
    assert conversation.updated_at == NOW - dt.timedelta(days=3)


def test_search_finds_titles_and_message_content_of_own_conversations_only(owner, outsider):
    by_title = Conversation.objects.create(user=owner, title="Expense report deadline")
    by_content = Conversation.objects.create(user=owner, title="Travel")
    Message.objects.create(conversation=by_content, role="user", content="Can I claim the taxi to the airport?")
    Message.objects.create(conversation=by_content, role="assistant", content="Yes, keep the TAXI receipt [1].")
    Conversation.objects.create(user=owner, title="Holidays")
    theirs = Conversation.objects.create(user=outsider, title="Taxi fraud investigation")
    Message.objects.create(conversation=theirs, role="user", content="taxi")

    hits = selectors.conversations_search(user=owner, query="taxi")
    assert [h.conversation.title for h in hits] == ["Travel"]
    assert "TAXI receipt" in hits[0].snippet or "taxi to the airport" in hits[0].snippet
    assert [h.conversation for h in selectors.conversations_search(user=owner, query="expense")] == [by_title]
    assert selectors.conversations_search(user=owner, query="   ") == []


def test_search_endpoint_answers_as_you_type(client, owner, outsider):
    conversation = Conversation.objects.create(user=owner, title="Travel")
    Message.objects.create(conversation=conversation, role="assistant", content="The per diem in Lyon is 45 euros.")
    Conversation.objects.create(user=outsider, title="per diem secrets")
    client.force_login(owner)
    data = client.get(reverse("chat:api_conversation_search"), {"q": "per di"}).json()
    assert [r["title"] for r in data["results"]] == ["Travel"]
    assert "per diem" in data["results"][0]["snippet"]
    assert data["results"][0]["url"] == conversation.get_absolute_url()


def test_deleted_conversations_are_hidden_restorable_then_purged(owner):
    conversation = Conversation.objects.create(user=owner, title="Oops")
    Message.objects.create(conversation=conversation, role="user", content="secret question")
    services.conversation_delete(conversation=conversation)
    assert not selectors.conversations_of(user=owner).exists()
    assert selectors.conversations_search(user=owner, query="secret") == []
    with pytest.raises(Conversation.DoesNotExist):
        selectors.conversation_get(user=owner, conversation_id=conversation.id)

    services.conversation_restore(conversation=conversation)
    assert list(selectors.conversations_of(user=owner)) == [conversation]

    services.conversation_delete(conversation=conversation)
    # still within the undo window: the purge leaves it
    assert services.conversations_purge_deleted(now=timezone.now()) == 0
    later = timezone.now() + services.PURGE_DELETED_AFTER + dt.timedelta(seconds=1)
    assert services.conversations_purge_deleted(now=later) == 1
    assert not Conversation.objects.filter(id=conversation.id).exists()
    assert not Message.objects.filter(content="secret question").exists()


def test_the_beat_task_purges_what_is_past_the_undo_window(owner):
    gone = Conversation.objects.create(user=owner, title="long deleted")
    fresh = Conversation.objects.create(user=owner, title="just deleted")
    Conversation.objects.filter(id=gone.id).update(deleted_at=timezone.now() - dt.timedelta(hours=1))
    services.conversation_delete(conversation=fresh)
    assert purge_deleted_conversations.apply().get() == 1
    assert list(Conversation.objects.values_list("title", flat=True)) == ["just deleted"]


def test_delete_then_undo_through_the_endpoints(client, owner):
    conversation = Conversation.objects.create(user=owner, title="Keep me")
    client.force_login(owner)
    response = client.post(reverse("chat:delete", args=[conversation.id]), "{}", content_type="application/json")
    data = response.json()
    assert data["deleted"] is True and data["undo_seconds"] > 0
    assert "Keep me" not in client.get(reverse("chat:home")).content.decode()
    assert client.get(conversation.get_absolute_url()).status_code == 404

    restored = client.post(data["undo_url"], "{}", content_type="application/json")
    assert restored.status_code == 200 and restored.json()["title"] == "Keep me"
    assert "Keep me" in client.get(reverse("chat:home")).content.decode()
    # nothing left to undo
    assert client.post(data["undo_url"], "{}", content_type="application/json").status_code == 404


@pytest.mark.parametrize("name", ["chat:pin", "chat:restore", "chat:delete", "chat:rename"])
def test_other_users_conversations_are_404(client, owner, outsider, name):
    conversation = Conversation.objects.create(user=owner, title="Mine")
    if name == "chat:restore":
        services.conversation_delete(conversation=conversation)
    client.force_login(outsider)
    response = client.post(
        reverse(name, args=[conversation.id]), json.dumps({"pinned": True, "title": "x"}),
        content_type="application/json",
    )
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "Mine" and conversation.pinned_at is None


def test_pin_endpoint_pins_and_explains_bad_input(client, owner):
    conversation = Conversation.objects.create(user=owner, title="Handbook")
    client.force_login(owner)
    url = reverse("chat:pin", args=[conversation.id])
    assert client.post(url, json.dumps({"pinned": True}), content_type="application/json").json()["pinned"] is True
    bad = client.post(url, json.dumps({"pinned": "yes"}), content_type="application/json")
    assert bad.status_code == 400 and "pinned" in bad.json()["error"]
    body = client.get(reverse("chat:home")).content.decode()
    assert 'data-group="pinned"' in body and "Unpin conversation" in body
    # the form fallback without script
    client.post(url, {"pinned": "0"})
    conversation.refresh_from_db()
    assert conversation.pinned_at is None


def test_a_renamed_title_is_never_replaced_by_an_automatic_one(client, owner):
    conversation = Conversation.objects.create(user=owner)
    services.question_submit(conversation=conversation, content="How many days of paid leave do I get per year?")
    conversation.refresh_from_db()
    assert conversation.title == "How many days of paid leave do I get per year?"
    assert conversation.title_source == Conversation.TitleSource.QUESTION
    client.force_login(owner)
    client.post(reverse("chat:rename", args=[conversation.id]), {"title": "Leave"})
    conversation.refresh_from_db()
    assert conversation.title_source == Conversation.TitleSource.USER
    assert services.conversation_title_set_automatic(conversation=conversation, title="Paid leave") is False
    conversation.refresh_from_db()
    assert conversation.title == "Leave"
