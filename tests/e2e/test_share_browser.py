"""Sharing in a real browser: the owner shares a conversation from the chat page's Share dialog
with a colleague by username; the colleague finds it under "Shared with me" and opens the
read-only view, where the source they may not open is a bare "Source not available to you"
marker; the owner revokes and the colleague's next load is a 404. No model server is needed:
the answer is stored as the pipeline stores it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.chat.test_sharing import (
    PUBLIC_TITLE, SECRET_TITLE, UNAVAILABLE, answer_citing_secret_and_public,
)
from tests.conftest import ROOT, spawn_web, stop_process
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture
def web(transactional_db):
    process, url = spawn_web("web-share")
    yield url
    stop_process(process)


def test_a_colleague_opens_a_shared_conversation_read_only_with_the_secret_source_withheld(
    web, browser, owner, engineering
):
    User.objects.create_user("colleague", password="colleague-pass-123", first_name="Cleo", last_name="Martin")
    conversation = answer_citing_secret_and_public(owner).conversation
    errors: list[str] = []

    # The owner shares from the conversation's page.
    owner_page = browser.new_page(viewport={"width": 1280, "height": 800})
    owner_page.on("pageerror", lambda exc: errors.append(f"owner: {exc}"))
    log_in(owner_page, web, "owner", "owner-pass-123")
    owner_page.goto(f"{web}/chat/c/{conversation.id}/")
    owner_page.click("#share-open")
    owner_page.wait_for_selector("#share-dialog[open]")
    owner_page.wait_for_selector("#share-group-list input[value='engineering']")  # the owner's own groups
    owner_page.fill("#share-usernames", "nobody-here")
    owner_page.click("#share-submit")
    owner_page.wait_for_selector("#share-error:has-text('No colleague has the username')")
    owner_page.fill("#share-usernames", "colleague")
    owner_page.click("#share-submit")
    owner_page.wait_for_selector("#share-list .share-item:has-text('Cleo Martin')")
    assert owner_page.is_hidden("#share-error") and owner_page.is_hidden("#share-none")
    row = f"li.conversation-item[data-id='{conversation.id}']"
    assert owner_page.get_attribute(row, "data-shared") == "true"  # its share button is lit in the sidebar
    owner_page.screenshot(path=str(SCREENSHOTS / "share-dialog.png"))

    # The colleague finds it under "Shared with me" and opens it.
    viewer = browser.new_page(viewport={"width": 1280, "height": 900})
    viewer.on("pageerror", lambda exc: errors.append(f"viewer: {exc}"))
    log_in(viewer, web, "colleague", "colleague-pass-123")
    viewer.click("#shared-with-me-link")
    viewer.click("#shared-list a:has-text('Pay and travel')")
    viewer.wait_for_url(re.compile(rf".*/chat/shared/{conversation.id}/$"))
    viewer.wait_for_selector(".answer-sources .source-unavailable")
    assert " ".join(viewer.inner_text(".answer-sources .source-unavailable").split()) == f"[1] {UNAVAILABLE}"
    assert viewer.get_attribute(".message-body .cite-unavailable", "title") == UNAVAILABLE
    assert viewer.is_visible(f".answer-sources a.source-title:has-text('{PUBLIC_TITLE}')")
    assert SECRET_TITLE not in viewer.content()
    assert viewer.locator("#prompt, #composer, #stop, .regenerate-button, .feedback-buttons").count() == 0
    assert "Shared with you by owner" in viewer.inner_text("#shared-banner")
    viewer.screenshot(path=str(SCREENSHOTS / "shared-conversation.png"), full_page=True)

    # The owner revokes; the colleague's next load is a 404.
    owner_page.click("#share-list .share-revoke")
    owner_page.wait_for_selector("#share-none:visible")
    assert owner_page.get_attribute(row, "data-shared") == "false"
    assert viewer.reload().status == 404
    assert errors == []
