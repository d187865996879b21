"""Staff in a browser, in French: an answer from the feedback list becomes an evaluation case in
one step, a run started on /evaluation/ runs in a real Celery worker against the real model
server, its page follows the progress and shows the case's result, and the runs chart draws."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Conversation, Feedback, Message
from assistant.evaluation.models import EvaluationCase, EvaluationRun
from tests.conftest import ARTIFACTS, spawn_celery_worker, stop_process

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker(app_server, purge_queues, use_llm):
    process = spawn_celery_worker(LLM_BASE_URL=use_llm["base_url"], LLM_MODEL=use_llm["model"],
                                  LLM_MAX_TOKENS="48")
    yield process
    stop_process(process)


def _rated_answer() -> Message:
    asker = User.objects.create_user("asker", password="asker-pass-123")
    conversation = Conversation.objects.create(user=asker)
    question = Message.objects.create(conversation=conversation, role="user", content="What colour is the sky?")
    answer = Message.objects.create(conversation=conversation, role="assistant", parent=question,
                                    status="complete", content="The sky is blue.")
    Feedback.objects.create(message=answer, user=asker, rating="up")
    return answer


def test_an_answer_becomes_a_case_and_a_run_from_the_page_reports_it(app_server, worker, browser):
    _rated_answer()
    User.objects.create_user("lead", password="lead-pass-123", is_staff=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page.goto(f"{app_server}/chat/feedback/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "lead-pass-123")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/chat/feedback/$"))
    page.get_by_role("link", name="Créer un cas d’évaluation").first.click()
    page.wait_for_url(re.compile(r".*/evaluation/cases/new/\?message=.*"))
    assert page.locator("#id_expected_answer").input_value() == "The sky is blue."  # rated up: prefilled
    page.fill("#id_tags", "e2e")
    page.click("#case-save")
    page.wait_for_url(re.compile(r".*/evaluation/cases/[0-9a-f-]{36}/$"))
    case = EvaluationCase.objects.get()
    assert case.question == "What colour is the sky?" and case.tags == ["e2e"]

    page.goto(f"{app_server}/evaluation/")
    assert page.locator("h1.page-title").inner_text() == "Évaluations"
    page.fill("#id_tag", "e2e")
    page.fill("#id_label", "navigateur")
    page.click("#run-start")
    page.wait_for_url(re.compile(r".*/evaluation/runs/[0-9a-f-]{36}/$"))
    # The page follows the worker's progress and reloads with the result when the run ends.
    page.wait_for_selector("#run-status[data-status='succeeded']", timeout=240_000)
    page.wait_for_selector(".result-row", timeout=30_000)
    run = EvaluationRun.objects.get()
    assert run.status == "succeeded" and run.done == 1 and run.config["model"]
    assert page.locator(".result-row").count() == 1
    assert "What colour is the sky?" in page.locator(".results-table").inner_text()
    page.goto(f"{app_server}/evaluation/")
    assert page.locator("figure.chart").count() >= 1 and page.locator("svg.chart-svg circle").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evaluation-runs.png"), full_page=True)
