"""Stop in the browser: the answer stops growing on the page and the model server stops writing."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Message
from tests.chat.endless_llm import EndlessModel
from tests.conftest import spawn_web, stop_process
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def endless_app(transactional_db):
    model = EndlessModel()
    try:
        process, url = spawn_web("web-endless", LLM_BASE_URL=model.base_url, LLM_MODEL="endless")
    except Exception:
        model.close()
        raise
    try:
        yield url, model
    finally:
        stop_process(process)
        model.close()


def _stored_status(deadline_s: float = 60) -> str:
    """The answer's status once the page's stop request has reached the server."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        answer = Message.objects.filter(role="assistant").order_by("-created_at").first()
        if answer and answer.status != Message.Status.STREAMING:
            return answer.status
        time.sleep(0.2)
    return "streaming"


def test_stop_freezes_the_answer_and_ends_generation(endless_app, browser):
    url, model = endless_app
    User.objects.create_user("sam", password="sam-pass-123456")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, url, "sam", "sam-pass-123456")
    page.fill("#prompt", "Tell me everything you know.")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => { const a = document.querySelector('article.message-assistant');"
        " return a && a.innerText.includes('word20'); }", timeout=120_000,
    )
    assert page.locator("#stop").is_visible()
    page.click("#stop")
    page.wait_for_function(
        "() => document.querySelector('article.message-assistant').dataset.status === 'stopped'", timeout=30_000
    )
    assert model.client_left.wait(60), "the model server went on writing after Stop"
    assert model.finished.wait(30)
    assert _stored_status() == Message.Status.STOPPED
    assert model.produced < 2_000  # far from the runaway answer's end: generation really ended
    assert page.locator("#stop").is_hidden()
    page.reload()
    stored = page.locator("article.message-assistant").inner_text()
    assert "word20" in stored  # what was written before Stop is kept
