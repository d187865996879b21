"""Feedback on answers: one rating per user and answer, changeable; staff list and CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from assistant.chat.models import Conversation, Feedback, FeedbackExport, Message
from connectors.models import AuditEvent


@pytest.fixture
def answer(owner) -> Message:
    conversation = Conversation.objects.create(user=owner, title="Leave")
    Message.objects.create(conversation=conversation, role="user", content="How many days of leave do I get?")
    return Message.objects.create(
        conversation=conversation, role="assistant", status="complete", content="You get 27 days [1].",
        citations=[{"n": 1, "title": "Leave policy", "location": "hr/leave.md", "quote": "27 days"}],
    )


def rate(client, message, **body):
    return client.post(
        reverse("chat:api_message_feedback", args=[message.id]), json.dumps(body), content_type="application/json"
    )


def export(client, **params):
    response = client.get(reverse("chat:feedback_export"), params)
    content = b"".join(response.streaming_content).decode() if response.status_code == 200 else ""
    return response, list(csv.DictReader(io.StringIO(content)))


def test_the_owner_rates_an_answer_and_changes_the_rating(client, owner, answer):
    client.force_login(owner)
    assert rate(client, answer, rating="up").json() == {"rating": "up", "comment": ""}
    response = rate(client, answer, rating="down", comment="  The number is wrong.  ")
    assert response.status_code == 200
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.comment, feedback.user) == ("down", "The number is wrong.", owner)


def test_the_owner_withdraws_a_rating(client, owner, answer):
    client.force_login(owner)
    rate(client, answer, rating="up")
    assert rate(client, answer, rating="").json() == {"rating": "", "comment": ""}
    assert not Feedback.objects.exists()


def test_the_rating_state_is_on_the_reopened_conversation(client, owner, answer):
    client.force_login(owner)
    rate(client, answer, rating="down", comment="Too vague")
    body = client.get(answer.conversation.get_absolute_url()).content.decode()
    assert 'id="feedback-state"' in body and str(answer.id) in body and "Too vague" in body


def test_it_rejects_outsider_rating_another_users_answer_with_404(client, outsider, answer):
    client.force_login(outsider)
    assert rate(client, answer, rating="down", comment="spam").status_code == 404
    assert not Feedback.objects.exists()


def test_bad_ratings_are_refused_with_a_clear_message(client, owner, answer):
    client.force_login(owner)
    response = rate(client, answer, rating="meh")
    assert response.status_code == 400 and '"up" or "down"' in response.json()["error"]
    question = answer.conversation.messages.get(role="user")
    response = rate(client, question, rating="up")
    assert response.status_code == 400 and "Only answers" in response.json()["error"]
    response = rate(client, answer, rating="down", comment="x" * 2001)
    assert response.status_code == 400 and "2000" in response.json()["error"]


def test_an_answer_still_streaming_cannot_be_rated(client, owner, answer):
    Message.objects.filter(id=answer.id).update(status="streaming")
    client.force_login(owner)
    assert rate(client, answer, rating="up").status_code == 400


def test_staff_see_the_feedback_list_filtered_by_rating(client, owner, staff, answer):
    other = Message.objects.create(
        conversation=answer.conversation, role="assistant", status="complete", content="Fine"
    )
    Feedback.objects.create(message=answer, user=owner, rating="down", comment="Wrong number")
    Feedback.objects.create(message=other, user=owner, rating="up", comment="Spot on")
    client.force_login(staff)
    body = client.get(reverse("chat:feedback_list")).content.decode()
    assert "Wrong number" in body and "Spot on" in body and "How many days of leave do I get?" in body
    body = client.get(reverse("chat:feedback_list"), {"rating": "down"}).content.decode()
    assert "Wrong number" in body and "Spot on" not in body


def test_a_bad_date_filter_says_what_to_fix(client, staff, db):
    client.force_login(staff)
    response = client.get(reverse("chat:feedback_list"), {"from": "31/01/2025"})
    assert response.status_code == 400 and "2025-01-31" in response.content.decode()


def test_staff_export_has_question_answer_sources_rating_comment_user_and_date(client, owner, staff, answer):
    Feedback.objects.create(message=answer, user=owner, rating="down", comment="=HYPERLINK(evil)")
    client.force_login(staff)
    response, rows = export(client)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert len(rows) == 1
    row = rows[0]
    assert row["question"] == "How many days of leave do I get?"
    assert row["answer"] == "You get 27 days [1]."
    assert row["sources"] == "[1] Leave policy (hr/leave.md)"
    assert row["rating"] == "down" and row["user"] == "owner" and row["date"]
    assert row["comment"] == "'=HYPERLINK(evil)"  # a spreadsheet will not run it
    assert row["assistant"] == ""


def test_the_export_includes_the_agents_steps(client, owner, staff, answer):
    answer.steps = [
        {"id": "c1", "step": 1, "tool": "search_knowledge", "arguments": {"query": "leave 2024"}, "status": "done",
         "label": "Searching", "summary": "Found 5 passages in 3 documents", "sources": [], "error": "",
         "duration_ms": 12},
        {"id": "c2", "step": 2, "tool": "read_document", "arguments": {"raw": "{oops"}, "status": "error",
         "label": "Reading", "summary": "", "sources": [], "error": "The arguments are not valid JSON.",
         "duration_ms": 0},
    ]
    answer.save()
    Feedback.objects.create(message=answer, user=owner, rating="down")
    client.force_login(staff)
    _response, [row] = export(client)
    assert row["steps"].splitlines() == [
        '1. search_knowledge {"query": "leave 2024"} → Found 5 passages in 3 documents (12 ms)',
        '2. read_document {"raw": "{oops"} → error: The arguments are not valid JSON. (0 ms)',
    ]


def test_every_export_is_recorded(client, owner, staff, answer):
    Feedback.objects.create(message=answer, user=owner, rating="down", comment="Wrong")
    client.force_login(staff)
    export(client, rating="down", **{"from": "2020-01-01"})
    record = FeedbackExport.objects.get()
    assert record.user == staff and record.row_count == 1
    assert record.filters == {"rating": "down", "from": "2020-01-01", "to": ""}
    event = AuditEvent.objects.get(action="feedback.exported")
    assert event.actor == staff and event.details["rows"] == 1


def test_the_export_follows_the_date_filter(client, owner, staff, answer):
    Feedback.objects.create(message=answer, user=owner, rating="up")
    client.force_login(staff)
    assert len(export(client, to="2000-01-01")[1]) == 0
    assert len(export(client, **{"from": "2000-01-01"})[1]) == 1


@pytest.mark.parametrize("name", ["chat:feedback_list", "chat:feedback_export"])
def test_non_staff_cannot_see_or_export_feedback(client, owner, answer, name):
    Feedback.objects.create(message=answer, user=owner, rating="down", comment="Wrong")
    client.force_login(owner)
    assert client.get(reverse(name)).status_code == 404
    assert not FeedbackExport.objects.exists() and not AuditEvent.objects.filter(action="feedback.exported").exists()


def test_anonymous_visitors_are_sent_to_sign_in_for_the_export(client, db):
    response = client.get(reverse("chat:feedback_export"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_export_pairs_a_regenerated_answer_with_its_own_question(client, owner, staff, answer):
    question = answer.conversation.messages.get(role="user")
    later = Message.objects.create(conversation=answer.conversation, role="user", content="And sick days?")
    regenerated = Message.objects.create(
        conversation=answer.conversation, parent=question, role="assistant", status="complete", content="27 days."
    )
    assert regenerated.created_at > later.created_at
    Feedback.objects.create(message=regenerated, user=owner, rating="up")
    client.force_login(staff)
    assert export(client)[1][0]["question"] == "How many days of leave do I get?"


def test_feedback_of_a_deleted_conversation_is_left_out(client, owner, staff, answer):
    from assistant.chat.services import conversation_delete

    Feedback.objects.create(message=answer, user=owner, rating="down", comment="Wrong")
    conversation_delete(conversation=answer.conversation)
    client.force_login(staff)
    assert export(client)[1] == []


def test_staff_see_the_tool_calls_of_a_rated_answer_in_the_admin(client, owner, answer, django_user_model):
    answer.steps = [{"id": "call_1", "step": 1, "tool": "search_knowledge", "arguments": {"query": "travel policy"},
                     "status": "done", "label": "Searching", "summary": "Found 5 passages in 3 documents",
                     "sources": [], "error": "", "duration_ms": 42},
                    {"id": "call_2", "step": 2, "tool": "read_document", "arguments": {"document": "nope"},
                     "status": "error", "label": "Reading", "summary": "", "sources": [],
                     "error": "No document with this id.", "duration_ms": 3}]
    answer.save()
    feedback = Feedback.objects.create(message=answer, user=owner, rating="down", comment="wrong policy")
    admin = django_user_model.objects.create_superuser("root", password="root-pass-123")
    client.force_login(admin)
    page = client.get(reverse("admin:chat_feedback_change", args=[feedback.id])).content.decode()
    assert "search_knowledge" in page and "travel policy" in page and "Found 5 passages in 3 documents" in page
    assert "42 ms" in page and "No document with this id." in page
