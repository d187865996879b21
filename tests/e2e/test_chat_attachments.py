"""An employee attaches a file in a real browser, asks about it, and the answer cites it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from assistant.chat.models import Attachment
from tests.conftest import ARTIFACTS
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e

NOTE = (
    "# Project Orion launch note\n\n"
    "The Orion satellite launches from Kourou on 14 March.\n\n"
    "Mission control for Orion is staffed by Priya Raman's team in building K7.\n"
)


def test_employee_attaches_a_file_and_the_answer_cites_it(app_server, browser, tmp_path):
    User.objects.create_user("employee", password="employee-pass-123")
    note = tmp_path / "orion-note.md"
    note.write_text(NOTE)
    bad = tmp_path / "fake.pdf"
    bad.write_bytes(b"MZ\x90\x00" + bytes(64))
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, app_server, "employee", "employee-pass-123")

    page.fill("#prompt", "Where does the Orion satellite launch from?")
    page.set_input_files("#attach-input", [str(note), str(bad)])
    pending = page.locator("#attachments-pending")
    pending.locator(".attachment-chip[data-state='ready']").wait_for(timeout=60_000)
    assert "orion-note.md" in pending.locator(".attachment-chip[data-state='ready']").inner_text()
    # the renamed program fails alone, with its reason, and what was typed stays
    failed = pending.locator(".attachment-chip[data-state='error']")
    failed.wait_for(timeout=30_000)
    assert "not a PDF" in failed.locator(".attachment-error").inner_text()
    assert page.locator("#prompt").input_value() == "Where does the Orion satellite launch from?"
    assert "/chat/c/" in page.url  # attaching the first file started the conversation
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-attachments-pending.png"))

    failed.locator(".attachment-remove").click()
    assert pending.locator(".attachment-chip").count() == 1
    page.click("#send")

    question = page.locator("article.message-user").last
    question.locator(".attachment-chip").wait_for(timeout=30_000)
    assert "orion-note.md" in question.locator(".attachment-chips").inner_text()
    assert pending.is_hidden()
    answer = page.locator("article.message-assistant").last
    page.wait_for_selector("article.message-assistant[data-status='complete']", timeout=120_000)
    sources = answer.locator("li.source")
    assert sources.count() >= 1, answer.inner_html()
    assert "orion-note.md" in sources.first.inner_text(), answer.inner_html()
    assert answer.locator("a.cite").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "chat-attachments.png"))

    attachment = Attachment.objects.get(name="orion-note.md")
    assert attachment.message is not None and attachment.message.content.startswith("Where does the Orion")

    # the chips survive a reload, and the citation opens the attached text with the passage marked
    page.reload()
    assert "orion-note.md" in page.locator("article.message-user .attachment-chips").last.inner_text()
    page.locator("article.message-assistant li.source a").first.click()
    page.wait_for_selector("mark#passage")
    assert "/chat/attachments/" in page.url
    assert page.locator("mark#passage").inner_text().strip()
