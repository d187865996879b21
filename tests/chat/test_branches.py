"""Regenerated answers and edited questions: branches of one conversation, each reachable,
and only the branch shown is sent to the model."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from assistant.chat import selectors, services
from assistant.chat.models import Conversation, Message


def answer(message: Message, text: str) -> Message:
    """What the stream view does once the model has written `text`."""
    message.content = text
    message.rendered_html = f"<p>{text}</p>"
    message.status = Message.Status.COMPLETE
    message.save()
    return message


@pytest.fixture
def conversation(owner) -> Conversation:
    return Conversation.objects.create(user=owner)


def thread(conversation) -> list[tuple[str, str, str]]:
    conversation.refresh_from_db()
    return [
        (m.role, m.content, f"{m.version.index}/{m.version.count}")
        for m in selectors.thread_of(conversation=conversation)
    ]


def test_regenerating_keeps_the_earlier_answer_as_a_version(conversation):
    q, a1 = services.question_submit(conversation=conversation, content="Leave days?")
    answer(a1, "27 days.")
    a2 = answer(services.answer_regenerate(message=a1), "Twenty-seven days a year.")
    assert thread(conversation) == [("user", "Leave days?", "1/1"), ("assistant", "Twenty-seven days a year.", "2/2")]

    services.message_activate(message=a1)
    assert thread(conversation) == [("user", "Leave days?", "1/1"), ("assistant", "27 days.", "1/2")]
    assert selectors.versions_of(message=a2).previous_id == str(a1.id)


def test_editing_a_question_branches_and_the_old_branch_stays_reachable(conversation):
    q1, a1 = services.question_submit(conversation=conversation, content="Leave days?")
    answer(a1, "27 days.")
    q2, a2 = services.question_submit(conversation=conversation, content="And for part-time staff?")
    answer(a2, "Pro rata.")

    edited, a3 = services.question_edit(message=q2, content="And for interns?")
    answer(a3, "Interns get 2 days a month.")
    assert thread(conversation) == [
        ("user", "Leave days?", "1/1"),
        ("assistant", "27 days.", "1/1"),
        ("user", "And for interns?", "2/2"),
        ("assistant", "Interns get 2 days a month.", "1/1"),
    ]
    # the old question, with its own answer, is one click away
    services.message_activate(message=q2)
    assert thread(conversation)[2:] == [("user", "And for part-time staff?", "1/2"), ("assistant", "Pro rata.", "1/1")]


def test_editing_the_first_question_works_too(conversation):
    q1, a1 = services.question_submit(conversation=conversation, content="Helo")
    answer(a1, "?")
    edited, a2 = services.question_edit(message=q1, content="Hello")
    answer(a2, "Hi!")
    assert thread(conversation) == [("user", "Hello", "2/2"), ("assistant", "Hi!", "1/1")]


def test_a_new_question_follows_the_branch_shown(conversation):
    q1, a1 = services.question_submit(conversation=conversation, content="Q1")
    answer(a1, "A1")
    answer(services.answer_regenerate(message=a1), "A1 again")
    services.message_activate(message=a1)
    q2, a2 = services.question_submit(conversation=conversation, content="Q2")
    assert q2.parent_id == a1.id
    assert [m.content for m in selectors.thread_of(conversation=conversation)] == ["Q1", "A1", "Q2", ""]


def test_history_sent_to_the_model_follows_the_active_branch_only(conversation):
    q1, a1 = services.question_submit(conversation=conversation, content="What is the leave policy?")
    answer(a1, "A wrong answer about pizza.")
    a1b = answer(services.answer_regenerate(message=a1), "27 days a year.")
    q2, a2 = services.question_submit(conversation=conversation, content="Part-time staff?")
    answer(a2, "Pro rata.")
    edited, a3 = services.question_edit(message=q2, content="Interns?")

    history = selectors.history_for(message=a3)
    assert history == [
        {"role": "user", "content": "What is the leave policy?"},
        {"role": "assistant", "content": "27 days a year."},
    ]
    assert selectors.question_of(message=a3) == "Interns?"
    assert a1b.id != a1.id


def test_history_of_messages_without_branch_pointers_is_in_order(owner):
    conversation = Conversation.objects.create(user=owner)
    Message.objects.create(conversation=conversation, role="user", content="First?")
    Message.objects.create(conversation=conversation, role="assistant", content="One.")
    Message.objects.create(conversation=conversation, role="user", content="Second?")
    pending = Message.objects.create(conversation=conversation, role="assistant", status="pending")
    assert selectors.history_for(message=pending) == [
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "One."},
    ]
    assert selectors.question_of(message=pending) == "Second?"
    assert [m.content for m in selectors.thread_of(conversation=conversation)] == ["First?", "One.", "Second?", ""]


def test_regenerate_waits_for_the_current_answer(conversation):
    q, a1 = services.question_submit(conversation=conversation, content="Q")
    with pytest.raises(services.InvalidInput, match="Wait for the current answer"):
        services.answer_regenerate(message=a1)


def test_questions_cannot_be_regenerated_nor_answers_edited(conversation):
    q, a = services.question_submit(conversation=conversation, content="Q")
    answer(a, "A")
    with pytest.raises(services.InvalidInput):
        services.answer_regenerate(message=q)
    with pytest.raises(services.InvalidInput):
        services.question_edit(message=a, content="x")
    with pytest.raises(services.InvalidInput, match="Type a question"):
        services.question_edit(message=q, content="  ")


def test_the_page_shows_the_version_switcher(client, owner, conversation):
    q, a1 = services.question_submit(conversation=conversation, content="Leave days?")
    answer(a1, "First answer.")
    answer(services.answer_regenerate(message=a1), "Second answer.")
    client.force_login(owner)
    body = client.get(conversation.get_absolute_url()).content.decode()
    assert "Second answer." in body and "First answer." not in body
    assert '<span class="version-label">2/2</span>' in body
    assert f'data-target="{a1.id}"' in body


def test_regenerate_edit_and_activate_endpoints(client, owner, conversation):
    q, a1 = services.question_submit(conversation=conversation, content="Leave days?")
    answer(a1, "First answer.")
    client.force_login(owner)

    regen = client.post(reverse("chat:api_answer_regenerate", args=[a1.id]), "{}", content_type="application/json")
    assert regen.status_code == 201
    data = regen.json()
    assert data["assistant_message"]["versions"] == {
        "index": 2, "count": 2, "previous_id": str(a1.id), "next_id": None
    }
    assert data["stream_url"].endswith(f"/messages/{data['assistant_message']['id']}/stream/")
    answer(Message.objects.get(id=data["assistant_message"]["id"]), "Second answer.")

    edit = client.post(
        reverse("chat:api_question_edit", args=[q.id]), json.dumps({"content": "Leave days for interns?"}),
        content_type="application/json",
    )
    assert edit.status_code == 201
    assert edit.json()["user_message"]["versions"]["count"] == 2
    answer(Message.objects.get(id=edit.json()["assistant_message"]["id"]), "Two a month.")

    back = client.post(reverse("chat:api_message_activate", args=[q.id]), "{}", content_type="application/json")
    assert back.status_code == 200
    body = client.get(conversation.get_absolute_url()).content.decode()
    assert "Second answer." in body and "Two a month." not in body

    empty = client.post(reverse("chat:api_question_edit", args=[q.id]), json.dumps({"content": ""}),
                        content_type="application/json")
    assert empty.status_code == 400 and "Type a question" in empty.json()["error"]


@pytest.mark.parametrize("name", ["chat:api_answer_regenerate", "chat:api_question_edit", "chat:api_message_activate"])
def test_branch_endpoints_reject_outsider_with_404(client, owner, outsider, conversation, name):
    q, a = services.question_submit(conversation=conversation, content="Mine")
    answer(a, "A")
    target = q if name == "chat:api_question_edit" else a
    client.force_login(outsider)
    response = client.post(reverse(name, args=[target.id]), json.dumps({"content": "hijack"}),
                           content_type="application/json")
    assert response.status_code == 404
    assert Message.objects.filter(conversation=conversation).count() == 2
