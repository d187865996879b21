"""The agent loop seen in a real browser, end to end: the app under uvicorn with tools on, a
scripted model that calls search_knowledge and then answers, the handbook indexed for real. The
step appears live as the server streams it (running, then its summary), folds once the answer
starts, unfolds to show what was searched and found, and is the same after a reload.

The model's second turn waits behind a gate the test opens, so the finished step is seen before
the answer without waiting for any fixed time.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Message
from tests.chat.scripted_llm import Call, Say, ScriptedModel, _ScriptedHandler
from tests.conftest import spawn_web, stop_process
from tests.e2e.test_chat_browser import handbook, log_in  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e
LAST = "article.message-assistant:last-of-type"


class _GatedScripted(_ScriptedHandler):
    """Every turn after the first (the tool call) waits until the test opens the gate."""

    def do_POST(self):  # noqa: N802
        if self.server.requests:
            self.server.gate.wait(120)
        super().do_POST()


@pytest.fixture
def agent_app(transactional_db):
    model = ScriptedModel([
        Call.of(("search_knowledge", {"query": "paid annual leave"})),
        Say("Full-time employees get 27 days of paid annual leave {cite:Northwind Robotics Employee Handbook}."),
    ])
    model.server.RequestHandlerClass = _GatedScripted
    model.server.gate = threading.Event()
    process, url = spawn_web("web-agent", LLM_BASE_URL=model.base_url, LLM_MODEL="scripted", LLM_TOOLS="true",
                               LLM_CONNECT_RETRIES="1", LLM_CONTEXT_LENGTH="32768")
    try:
        yield url, model
    finally:
        model.server.gate.set()
        stop_process(process)
        model.close()


def test_a_step_streams_live_folds_unfolds_and_survives_a_reload(handbook, agent_app, browser):
    url, model = agent_app
    User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, url, "employee", "employee-pass-123")
    page.fill("#prompt", "How many days of paid annual leave do employees get?")
    page.keyboard.press("Enter")
    answer = page.locator(LAST)

    # The search ran on the server; its step arrived over SSE with its summary, before any answer text.
    step = answer.locator(".step[data-status='done']")
    step.wait_for(timeout=120_000)
    assert "paid annual leave" in step.inner_text()
    assert "Found" in step.inner_text() and "passage" in step.inner_text()
    assert answer.locator(".message-body").inner_text().strip() == ""

    model.server.gate.set()
    page.wait_for_selector(f"{LAST}[data-status='complete']", timeout=120_000)
    assert "27 days" in answer.locator(".message-body").inner_text()
    toggle = answer.locator(".steps-toggle")
    assert toggle.get_attribute("aria-expanded") == "false" and "1 step" in toggle.inner_text()
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert "Employee Handbook" in answer.locator(".steps").inner_text()

    stored = Message.objects.filter(role="assistant").latest("created_at")
    assert [s["tool"] for s in stored.steps] == ["search_knowledge"] and stored.steps[0]["status"] == "done"
    assert {"search_knowledge", "read_document", "list_sources"} <= set(model.offered(0))
    assert model.tool_results(1)[0][0] == "search_knowledge"

    page.reload()
    again = page.locator(LAST)
    folded = again.locator(".steps-toggle")
    assert folded.get_attribute("aria-expanded") == "false" and "1 step" in folded.inner_text()
    folded.click()
    assert "paid annual leave" in again.locator(".steps").inner_text()
    assert again.locator(".answer-sources li.source").count() >= 1
