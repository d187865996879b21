"""An answer written by the answers worker (ANSWER_RUNNER=worker) in the browser: its markdown
renders while it streams, and a reload in the middle picks the same answer up and sees it to its
end, once, with nothing lost or doubled."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Message
from tests.chat.slow_llm import SlowModel
from tests.conftest import spawn_celery_worker, spawn_web, stop_process
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e

ANSWER = "Here is **the plan** for the move:\n\n" + " ".join(f"step{i}" for i in range(80)) + " done."
LAST_WORD = "done."


@pytest.fixture
def worker_app(transactional_db, purge_queues):
    model = SlowModel(ANSWER, delay=0.08)
    env = dict(ANSWER_RUNNER="worker", LLM_BASE_URL=model.base_url, LLM_MODEL="slow")
    processes = []
    try:
        web, url = spawn_web("web-worker-runner", **env)
        processes.append(web)
        processes.append(spawn_celery_worker(queues="answer", pool="threads", **env))
        yield url, model
    finally:
        for process in processes:
            stop_process(process)
        model.close()


def test_markdown_renders_while_streaming_and_a_reload_mid_answer_catches_up(worker_app, browser):
    url, model = worker_app
    User.objects.create_user("sam", password="sam-pass-123456")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, url, "sam", "sam-pass-123456")
    page.fill("#prompt", "How do we move offices?")
    page.keyboard.press("Enter")

    # Bold text while the answer is still streaming: rendered before the end, not only after it.
    page.wait_for_function(
        "() => { const a = document.querySelector('article.message-assistant');"
        " return a && a.dataset.status === 'streaming' && a.querySelector('.message-body strong')"
        " && a.innerText.includes('step5'); }", timeout=120_000,
    )
    assert page.locator("article.message-assistant .message-body strong").inner_text() == "the plan"

    page.reload()  # mid-answer: the worker goes on, the page follows the same answer again
    page.wait_for_function(
        "() => { const a = document.querySelector('article.message-assistant');"
        " return a && a.dataset.status === 'complete'; }", timeout=120_000,
    )
    shown = page.locator("article.message-assistant .message-body").inner_text()
    assert LAST_WORD in shown and shown.count("step10 ") == 1 and "step79" in shown
    answer = Message.objects.get(role="assistant")
    assert answer.status == Message.Status.COMPLETE and answer.content == ANSWER
    assert model.answers_written == 1  # the reload did not ask the model again
    page.screenshot(path="docs/screenshots/answer-after-reload.png")
