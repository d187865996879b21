"""The cases pages (/evaluation/cases/): staff only, one step from an answer, filters, edit, delete,
JSON Lines in the `evaluate answers --qa` format, and the ACL inherited from the sources."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Assistant, Conversation, Feedback, Message
from assistant.evaluation.models import EvaluationCase
from assistant.rag.evaluation.datasets import read_qa
from connectors.models import Document
from tests.evaluation.conftest import SALARIES, TRAVEL, make_case


@pytest.fixture
def staff_engineer(db, engineering) -> User:
    user = User.objects.create_user("lead", password="lead-pass-123", is_staff=True)
    user.groups.add(engineering)
    return user


@pytest.fixture
def staff_sales(db, sales) -> User:
    user = User.objects.create_user("sales-lead", password="sales-pass-123", is_staff=True)
    user.groups.add(sales)
    return user


def _client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def answer(knowledge, owner) -> Message:
    """An answer the owner got and rated up: it cited the travel policy and also saw the canteen page."""
    travel = Document.objects.get(external_id="travel-2024.md")
    canteen = Document.objects.get(external_id="canteen.md")
    conversation = Conversation.objects.create(user=owner)
    first = Message.objects.create(conversation=conversation, role="user", content="How do we travel?")
    reply = Message.objects.create(conversation=conversation, role="assistant", parent=first, content="By train.")
    question = Message.objects.create(conversation=conversation, role="user", parent=reply, content="And in 2024?")
    message = Message.objects.create(
        conversation=conversation, role="assistant", parent=question, status="complete",
        content="Train travel is first class from 2024 [1].",
        citations=[{"n": 1, "document_id": str(travel.id), "title": travel.title, "chunk_ids": []}],
        sources=[{"n": 1, "title": travel.title, "document_id": str(travel.id), "kind": "document", "cited": True},
                 {"n": 2, "title": canteen.title, "document_id": str(canteen.id), "kind": "document", "cited": False}],
    )
    Feedback.objects.create(message=message, user=owner, rating="up")
    return message


def test_the_pages_are_for_staff_only(client, owner, db):
    for url in ("/evaluation/", "/evaluation/cases/", "/evaluation/cases/new/", "/evaluation/cases/export.jsonl"):
        assert _client(client, owner).get(url).status_code == 404
    client.logout()
    assert client.get("/evaluation/cases/").status_code == 302


def test_an_answer_becomes_a_case_in_one_step(client, staff_engineer, answer):
    page = _client(client, staff_engineer).get(f"/evaluation/cases/new/?message={answer.id}")
    assert page.status_code == 200
    html = page.content.decode()
    assert "And in 2024?" in html and "Train travel is first class from 2024." in html  # rated up: the answer
    assert "Travel policy 2024" in html and "Canteen" in html  # every source it saw, to pick from
    form = page.context["form"]
    data = {k: v for k, v in form.initial.items() if k not in ("assistant", "expected_sources", "keep_history")}
    data.update({"message": str(answer.id), "expected_sources": form.initial["expected_sources"],
                 "keep_history": "on", "tags": "travel, regression"})
    saved = client.post("/evaluation/cases/new/", data)
    assert saved.status_code == 302
    case = EvaluationCase.objects.get()
    assert case.question == "And in 2024?" and case.expected_answer == "Train travel is first class from 2024."
    assert case.history == [{"role": "user", "content": "How do we travel?"}, {"role": "assistant", "content": "By train."}]
    assert [s["external_id"] for s in case.expected_sources] == ["travel-2024.md"]  # the cited one was checked
    assert case.groups == ["engineering"] and case.tags == ["travel", "regression"] and case.origin == "feedback"


def test_the_feedback_list_and_the_message_menu_offer_it_to_staff(client, staff_engineer, owner, answer):
    feedback = _client(client, staff_engineer).get("/chat/feedback/").content.decode()
    assert f"/evaluation/cases/new/?message={answer.id}" in feedback
    chat = client.get(f"/chat/c/{answer.conversation_id}/")
    if chat.status_code == 200:  # staff may not open another's conversation; their own shows the link
        assert "make-case-link" in chat.content.decode()
    own = Conversation.objects.create(user=staff_engineer)
    Message.objects.create(conversation=own, role="user", content="Hi")
    mine = Message.objects.create(conversation=own, role="assistant", content="Hello", status="complete")
    html = client.get(f"/chat/c/{own.id}/").content.decode()
    assert f"/evaluation/cases/new/?message={mine.id}" in html
    assert "make-case-link" not in _client(client, owner).get(f"/chat/c/{answer.conversation_id}/").content.decode()


def test_an_unfinished_or_unknown_answer_is_refused_clearly(client, staff_engineer, answer):
    answer.status = "streaming"
    answer.save()
    response = _client(client, staff_engineer).get(f"/evaluation/cases/new/?message={answer.id}", follow=True)
    assert "Only a finished answer" in response.content.decode()
    assert client.get("/evaluation/cases/new/?message=not-a-uuid").status_code == 404


def test_a_case_without_any_expectation_is_a_form_error(client, staff_engineer, db):
    response = _client(client, staff_engineer).post("/evaluation/cases/new/", {"question": "Anything?"})
    assert response.status_code == 400 and "Say what a good answer holds" in response.content.decode()
    assert not EvaluationCase.objects.exists()


def test_cases_are_filtered_by_tag_and_assistant(client, staff_engineer, knowledge):
    hr = Assistant.objects.create(name="HR")
    make_case(question="Travel question?", tags=["travel"])
    make_case(question="HR question?", tags=["hr"], assistant=hr)
    c = _client(client, staff_engineer)
    assert [x.question for x in c.get("/evaluation/cases/?tag=travel").context["page"]] == ["Travel question?"]
    assert [x.question for x in c.get(f"/evaluation/cases/?assistant={hr.id}").context["page"]] == ["HR question?"]
    assert [x.question for x in c.get("/evaluation/cases/?assistant=default").context["page"]] == ["Travel question?"]
    assert c.get("/evaluation/cases/?assistant=junk").context["page"].paginator.count == 2
    assert c.get("/evaluation/cases/?tag=a%00b").status_code == 400


def test_a_case_is_edited_and_deleted(client, staff_engineer, knowledge):
    case = make_case()
    c = _client(client, staff_engineer)
    page = c.get(f"/evaluation/cases/{case.id}/")
    data = {**{k: v for k, v in page.context["form"].initial.items() if k not in ("assistant", "keep_history")},
            "must_contain": "first class\nfrom 2024", "more_documents": "Handbook: canteen.md"}
    assert c.post(f"/evaluation/cases/{case.id}/", data).status_code == 302
    case.refresh_from_db()
    assert case.must_contain == ["first class", "from 2024"]
    assert [s["external_id"] for s in case.expected_sources] == ["travel-2024.md", "canteen.md"]
    assert c.post(f"/evaluation/cases/{case.id}/delete/").status_code == 302
    assert not EvaluationCase.objects.exists()


def test_a_case_about_a_group_document_is_hidden_from_staff_outside_the_group(client, staff_engineer, staff_sales,
                                                                               knowledge):
    secret = make_case(question="Salary band of a senior engineer?", expected_sources=[SALARIES], tags=["pay"])
    public = make_case(question="Train class?")
    outsider = _client(client, staff_sales)
    assert [x.id for x in outsider.get("/evaluation/cases/").context["page"]] == [public.id]
    assert outsider.get(f"/evaluation/cases/{secret.id}/").status_code == 404
    assert outsider.post(f"/evaluation/cases/{secret.id}/delete/").status_code == 404
    assert "Salary band" not in b"".join(outsider.get("/evaluation/cases/export.jsonl").streaming_content).decode()
    insider = _client(client, staff_engineer)
    assert {x.id for x in insider.get("/evaluation/cases/").context["page"]} == {public.id, secret.id}


def test_export_reads_as_a_qa_file_and_imports_back(client, staff_engineer, knowledge, tmp_path):
    make_case(alternative_answers=["First class"], must_contain=["first class"], tags=["travel"])
    c = _client(client, staff_engineer)
    exported = b"".join(c.get("/evaluation/cases/export.jsonl").streaming_content).decode()
    path = tmp_path / "cases.jsonl"
    path.write_text(exported)
    pairs = read_qa(path)  # what `evaluate answers --qa` reads
    assert pairs[0]["question"] == "What class is train travel in 2024?" and pairs[0]["doc_id"] == "travel-2024.md"
    assert pairs[0]["answers"] == ["First class from 2024.", "First class"]
    EvaluationCase.objects.all().delete()
    with path.open("rb") as handle:
        assert c.post("/evaluation/cases/import/", {"file": handle, "tags": "imported"}).status_code == 302
    case = EvaluationCase.objects.get()
    assert case.must_contain == ["first class"] and case.tags == ["travel", "imported"] and case.origin == "import"
    assert case.expected_sources == [TRAVEL]


def test_a_bad_import_changes_nothing_and_says_which_line(client, staff_engineer, db, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "Fine?", "answer": "yes"}) + "\n{not json\n")
    with path.open("rb") as handle:
        response = _client(client, staff_engineer).post("/evaluation/cases/import/", {"file": handle}, follow=True)
    assert "Line 2 is not JSON" in response.content.decode()
    assert not EvaluationCase.objects.exists()
    path.write_bytes(b"\xff\xfe\x00")
    with path.open("rb") as handle:
        response = client.post("/evaluation/cases/import/", {"file": handle}, follow=True)
    assert "not UTF-8" in response.content.decode()


def test_the_cases_page_speaks_french(client, staff_engineer, knowledge):
    make_case()
    html = _client(client, staff_engineer).get("/evaluation/cases/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Cas d’évaluation" in html and "Nouveau cas" in html
