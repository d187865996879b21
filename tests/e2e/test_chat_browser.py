"""An employee in a real browser: log in, ask, watch the answer stream, open a citation."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.chat.fake_llm import SOURCE_BLOCK
from tests.chat.fake_llm import _Handler as _ScriptedHandler
from tests.conftest import ARTIFACTS, ROOT

pytestmark = pytest.mark.e2e
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"


@pytest.fixture
def handbook(transactional_db):
    connector = Connector.objects.create(
        name="Company handbook", kind="folder", config={"path": str(SAMPLES)}, is_public=True
    )
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    return connector


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/chat/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/chat/$"))


def test_employee_asks_and_sees_the_real_model_stream_an_answer(handbook, app_server, browser):
    User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, app_server, "employee", "employee-pass-123")

    page.fill("#prompt", "How many days of paid annual leave do employees get?")
    page.keyboard.press("Enter")
    # tokens arrive before the answer completes
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('article.message-assistant')].pop();"
        " return a && a.querySelector('.message-body').textContent.trim().length > 0; }",
        timeout=150_000,  # a loaded 2-core machine prefills slowly
    )
    page.wait_for_selector("article.message-assistant[data-status='complete']", timeout=240_000)
    assert page.locator("#prompt").input_value() == ""
    streamed = page.locator("article.message-assistant .message-body").last.inner_text().strip()
    assert streamed
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"))

    # the conversation is listed and survives a reload with the same answer
    assert page.locator("#conversation-list .conversation-item").count() == 1
    page.reload()
    assert page.locator("article.message-assistant .message-body").last.inner_text().strip() == streamed


class _LeaveAnswerHandler(_ScriptedHandler):
    """Quotes the annual-leave source block with its number, as a capable model would.

    The bundled 135M model cites only by chance, so the citation path (chip, sources panel,
    passage view) is driven by this deterministic stand-in; the test above covers the real one.
    """

    def answer(self, messages: list[dict]) -> str:
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        for n, text in SOURCE_BLOCK.findall(prompt):
            if "27 days of paid annual leave" in text:
                return f"Full-time employees receive 27 days of paid annual leave per calendar year [{n}]."
        return "I could not find that in the handbook."


@pytest.fixture
def scripted_app_server(transactional_db):
    from tests.conftest import free_port, service_env, stop_process, wait_for_http

    server = ThreadingHTTPServer(("127.0.0.1", 0), _LeaveAnswerHandler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ARTIFACTS.mkdir(exist_ok=True)
    port, log = free_port(), ARTIFACTS / "web-scripted.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT,
        env=service_env(LLM_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}/v1", LLM_MODEL="fake",
                        ALLOWED_HOSTS="127.0.0.1,localhost"),
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
        yield url
    finally:
        stop_process(process)
        server.shutdown()
        server.server_close()


def test_a_cited_answer_links_to_the_exact_passage(handbook, scripted_app_server, browser):
    User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, scripted_app_server, "employee", "employee-pass-123")

    page.fill("#prompt", "How many days of paid annual leave do employees get?")
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message-assistant[data-status='complete']", timeout=120_000)
    answer = page.locator("article.message-assistant").last
    assert "27 days" in answer.inner_text()
    assert answer.locator("a.cite").count() == 1, answer.inner_html()
    assert answer.locator("li.source").count() == 1
    assert "handbook" in answer.locator("li.source").first.inner_text().lower()

    page.reload()
    assert page.locator("article.message-assistant a.cite").count() == 1
    # the citation opens the source document with the cited passage marked
    page.locator("article.message-assistant a.cite").first.click()
    page.wait_for_selector("mark#passage")
    assert "27 days of paid annual leave" in page.locator("mark#passage").inner_text()
    page.screenshot(path=str(ARTIFACTS / "source.png"))


def test_phone_width_shows_the_composer_and_hides_the_sidebar(app_server, browser, transactional_db):
    User.objects.create_user("mobile", password="mobile-pass-123")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    log_in(page, app_server, "mobile", "mobile-pass-123")
    assert page.locator("#prompt").is_visible()
    assert page.locator("#sidebar-toggle").is_visible()
    box = page.locator("#prompt").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(ARTIFACTS / "chat-phone.png"))
