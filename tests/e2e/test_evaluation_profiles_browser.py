"""Staff in a browser, in English: two settings profiles made on /evaluation/profiles/, the same
cases run from the page with each (in a real Celery worker, against a scripted model server that
records which model each request named), and the two runs side by side: what differs in the
configuration and the case that now fails."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from assistant.evaluation.models import EvaluationCase, EvaluationProfile, EvaluationRun
from tests.chat.scripted_llm import ScriptedModel, Say
from tests.conftest import ARTIFACTS, spawn_celery_worker, stop_process

pytestmark = pytest.mark.e2e


@pytest.fixture
def scripted_worker(app_server, purge_queues):
    """A worker whose model is the scripted server: the first run's answer is right, the second's wrong."""
    model = ScriptedModel([Say("The sky is blue."), Say("The sky is green.")])
    process = spawn_celery_worker(LLM_BASE_URL=model.base_url, LLM_MODEL="scripted", LLM_TOOLS="false")
    yield model
    stop_process(process)
    model.close()


def _profile(page, app_server: str, name: str, model: str) -> None:
    page.goto(f"{app_server}/evaluation/profiles/")
    page.fill("#id_name", name)
    page.fill("#id_LLM_MODEL", model)
    page.fill("#id_RAG_TOP_K", "2")
    page.click("#profile-save")
    page.wait_for_selector(f".profile-row[data-name='{name}']")


def _run(page, app_server: str, profile: str, label: str) -> None:
    page.goto(f"{app_server}/evaluation/")
    page.fill("#id_tag", "sky")
    page.select_option("#id_profile", label=profile)
    page.fill("#id_label", label)
    page.click("#run-start")
    page.wait_for_url(re.compile(r".*/evaluation/runs/[0-9a-f-]{36}/$"))
    page.wait_for_selector("#run-status[data-status='succeeded']", timeout=120_000)


def test_two_settings_profiles_run_from_the_page_and_compare_side_by_side(app_server, scripted_worker, browser):
    User.objects.create_user("lead", password="lead-pass-123", is_staff=True)
    EvaluationCase.objects.create(question="What colour is the sky?", expected_answer="Blue.", must_contain=["blue"],
                                  tags=["sky"])
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
    page.goto(f"{app_server}/evaluation/profiles/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "lead-pass-123")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/evaluation/profiles/$"))
    assert page.locator("h1.page-title").inner_text() == "Settings profiles"
    _profile(page, app_server, "Small model", "small-model")
    _profile(page, app_server, "Large model", "large-model")
    assert EvaluationProfile.objects.get(name="Large model").values == {"LLM_MODEL": "large-model", "RAG_TOP_K": 2}

    _run(page, app_server, "Small model", "A")
    _run(page, app_server, "Large model", "B")
    assert [r["model"] for r in scripted_worker.requests] == ["small-model", "large-model"]
    first, second = EvaluationRun.objects.order_by("created_at")

    page.goto(f"{app_server}/evaluation/")
    page.select_option("#compare-a", str(first.id))
    page.select_option("#compare-b", str(second.id))
    page.get_by_role("button", name="Side by side").click()
    page.wait_for_url(re.compile(r".*/evaluation/compare/\?a=.*"))
    assert "Settings profile: Small model → Large model." in page.locator("main").inner_text()
    model_row = page.locator(".config-row[data-setting='model']")
    assert "small-model" in model_row.inner_text() and "large-model" in model_row.inner_text()
    pair = page.locator("article.pair")
    assert pair.count() == 1 and "now fails" in pair.inner_text()
    assert "The sky is blue." in pair.inner_text() and "The sky is green." in pair.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evaluation-profiles-compare.png"), full_page=True)
