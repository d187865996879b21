"""An employee in a real browser: log in, ask, watch the answer stream, open a citation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute
from tests.conftest import ARTIFACTS

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


def test_employee_asks_and_sees_a_streamed_cited_answer(handbook, app_server, browser):
    User.objects.create_user("employee", password="employee-pass-123", first_name="Erin")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, app_server, "employee", "employee-pass-123")

    page.fill("#prompt", "How many days of paid annual leave do employees get?")
    page.keyboard.press("Enter")
    answer = page.locator("article.message-assistant").last
    # tokens arrive before the answer completes
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('article.message-assistant')].pop();"
        " return a && a.querySelector('.message-body').textContent.trim().length > 0; }",
        timeout=150_000,  # a loaded 2-core machine prefills slowly
    )
    page.wait_for_selector("article.message-assistant[data-status='complete']", timeout=240_000)
    assert page.locator("#prompt").input_value() == ""
    chips = answer.locator("a.cite")
    assert chips.count() >= 1, answer.inner_html()
    assert answer.locator("li.source").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"))

    # the conversation is listed and survives a reload
    assert page.locator("#conversation-list .conversation-item").count() == 1
    page.reload()
    assert page.locator("article.message-assistant a.cite").count() >= 1

    # the citation opens the source document with the passage marked
    page.locator("article.message-assistant a.cite").first.click()
    page.wait_for_selector("mark#passage")
    assert page.locator("mark#passage").inner_text().strip()
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
