"""Assistants, feedback, memory and model-server errors, in a real browser against the real
model server.

The app reaches llama.cpp through a small TCP proxy owned by the test: it records what the
app sends (to see an assistant's instructions or a memory reach the model) and can be taken
down and brought back on the same port (the model server "down", then "back").
"""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Assistant, Conversation, Feedback, FeedbackExport, Memory, Message
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.conftest import ARTIFACTS, ROOT, free_port, service_env, stop_process, wait_for_http
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e
SCREENSHOTS = ROOT / "docs" / "screenshots"
ANSWER_TIMEOUT = 240_000  # a loaded 2-core machine prefills slowly


class SwitchableProxy:
    """TCP proxy to the model server; `down()` refuses connections, `up()` serves again."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.up()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self._stop = threading.Event()
        threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            self._stop.set()
            self._listener.close()
            self._listener = None

    def sent_text(self) -> str:
        with self._lock:
            return self.sent.decode("utf-8", "replace")

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


@pytest.fixture
def proxy(llm_server):
    proxy = SwitchableProxy(llm_server["port"])
    yield proxy
    proxy.down()


@pytest.fixture
def features_app(transactional_db, llm_server, proxy):
    """The ASGI app under uvicorn, reaching the model server through the proxy."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / "web-features.log"
    env = service_env(
        LLM_BASE_URL=proxy.base_url, LLM_MODEL=llm_server["model"], LLM_CONNECT_RETRIES="0", LLM_MAX_TOKENS="48",
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
    except Exception:
        stop_process(process)
        raise
    yield url
    stop_process(process)


@pytest.fixture
def leave_policy(transactional_db, tmp_path) -> Connector:
    folder = tmp_path / "hr"
    folder.mkdir()
    (folder / "leave.md").write_text(
        "# Leave policy\n\nEmployees get 27 days of paid annual leave per year. "
        "Up to 5 unused days carry over to the next year.\n"
    )
    connector = Connector.objects.create(
        name="HR handbook", kind="folder", config={"path": str(folder)}, is_public=True
    )
    sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return connector


def ask(page, text: str):
    page.fill("#prompt", text)
    page.keyboard.press("Enter")
    return page.locator("article.message-assistant").last


def wait_answer(page, status: str = "complete") -> None:
    page.wait_for_selector(f"article.message-assistant:last-of-type[data-status='{status}']", timeout=ANSWER_TIMEOUT)


def open_user_menu(page) -> None:
    if page.locator("#user-menu").get_attribute("open") is None:
        page.locator("#user-menu summary").click()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_switch_assistant_then_thumbs_down_with_a_comment_reaches_the_staff_export(
    leave_policy, features_app, proxy, browser
):
    User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    User.objects.create_superuser("boss", password="boss-pass-123")
    hr = Assistant.objects.create(
        name="HR helper", description="Leave, pay and benefits",
        instructions="Speak as the HR team. Mention the HR handbook by name.", max_tokens=40,
    )
    hr.connectors.add(leave_policy)
    Assistant.objects.create(name="IT helper", description="Laptops and accounts")

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, features_app, "employee", "employee-pass-123")
    picker = page.locator("#assistant-select")
    assert picker.locator("option:checked").inner_text().strip() == "General assistant"
    picker.select_option(label="HR helper")
    assert "HR helper" in page.locator("#assistant-status").inner_text()

    answer = ask(page, "How many days of paid annual leave do employees get?")
    wait_answer(page)
    conversation = Conversation.objects.get(user__username="employee")
    assert conversation.assistant == hr
    assert "Speak as the HR team" in proxy.sent_text()  # its instructions reached the model

    # switching applies to the conversation and survives a reload
    picker.select_option(label="IT helper")
    page.wait_for_function("() => document.querySelector('#assistant-status').textContent.includes('IT helper')")
    conversation.refresh_from_db()
    assert conversation.assistant.name == "IT helper"
    page.reload()
    assert page.locator("#assistant-select option:checked").inner_text().strip() == "IT helper"

    # thumbs down with a comment
    answer = page.locator("article.message-assistant").last
    answer.locator(".feedback-button[data-rating='down']").click()
    form = answer.locator(".feedback-form")
    form.locator("textarea").fill("It forgot the 5 days that carry over.")
    screenshot(page, "chat-feedback.png")
    form.locator(".feedback-send").click()
    answer.locator(".feedback-thanks").wait_for()
    assert answer.locator(".feedback-button[data-rating='down']").get_attribute("aria-pressed") == "true"
    feedback = Feedback.objects.get()
    assert (feedback.rating, feedback.comment) == ("down", "It forgot the 5 days that carry over.")
    page.reload()
    assert page.locator(".feedback-button[data-rating='down']").last.get_attribute("aria-pressed") == "true"

    # the employee has no way to the staff list
    assert page.locator("#feedback-link").count() == 0
    response = page.goto(f"{features_app}/chat/feedback/export.csv")
    assert response.status == 404

    # staff see it and export it
    staff_page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(staff_page, features_app, "boss", "boss-pass-123")
    open_user_menu(staff_page)
    staff_page.locator("#feedback-link").click()
    staff_page.select_option("#filter-rating", "down")
    staff_page.get_by_role("button", name="Filter").click()
    row = staff_page.locator("tr.feedback-row")
    assert row.count() == 1 and "It forgot the 5 days" in row.inner_text()
    screenshot(staff_page, "feedback-list.png")
    with staff_page.expect_download() as download:
        staff_page.click("#feedback-export")
    content = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(content)))
    assert len(rows) == 1
    assert rows[0]["comment"] == "It forgot the 5 days that carry over."
    assert rows[0]["question"] == "How many days of paid annual leave do employees get?"
    assert rows[0]["rating"] == "down" and rows[0]["user"] == "employee"
    assert rows[0]["answer"] == Message.objects.get(role="assistant").content
    assert FeedbackExport.objects.get().username == "boss"


def test_memory_on_remember_then_listed_and_used(features_app, proxy, browser, transactional_db):
    User.objects.create_user("employee", password="employee-pass-123")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, features_app, "employee", "employee-pass-123")

    open_user_menu(page)
    switch = page.locator("#memory-toggle")
    assert switch.get_attribute("aria-checked") == "false"
    switch.click()
    page.wait_for_function("() => document.querySelector('#memory-toggle').getAttribute('aria-checked') === 'true'")

    answer = ask(page, "remember that my team is Platform")
    wait_answer(page)
    assert "My team is Platform" in answer.inner_text()
    assert list(Memory.objects.values_list("text", flat=True)) == ["My team is Platform"]

    open_user_menu(page)
    page.locator("#memories-link").click()
    page.wait_for_url("**/chat/memories/")
    assert page.locator(".memory-text").input_value() == "My team is Platform"
    screenshot(page, "memories.png")

    page.goto(f"{features_app}/chat/")
    ask(page, "Which team am I in?")
    wait_answer(page)
    assert "My team is Platform" in proxy.sent_text()  # the memory was in the prompt

    # deleted on the page: gone from the list and from later prompts
    page.goto(f"{features_app}/chat/memories/")
    page.locator(".memory-delete").click()
    page.locator("#memory-empty").wait_for()
    assert not Memory.objects.exists()


def test_model_server_down_shows_a_clear_error_and_retry_works_once_it_is_back(
    features_app, proxy, browser, transactional_db
):
    User.objects.create_user("employee", password="employee-pass-123")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, features_app, "employee", "employee-pass-123")

    proxy.down()
    question = "How many days of paid annual leave do employees get?"
    answer = ask(page, question)
    error = answer.locator(".message-error")
    error.wait_for(timeout=60_000)
    assert "not reachable" in error.inner_text()
    assert answer.locator(".retry-button").is_visible()
    assert page.locator("#prompt").input_value() == question  # nothing typed is lost
    screenshot(page, "chat-model-down.png")

    proxy.up()
    answer.locator(".retry-button").click()
    wait_answer(page)
    assert answer.locator(".message-error").count() == 0
    assert answer.locator(".message-body").inner_text().strip()
    assert page.locator("#prompt").input_value() == ""
    assert page.locator("article.message-user").count() == 1  # answered in place, not asked twice
    assert Message.objects.get(role="assistant").status == Message.Status.COMPLETE
