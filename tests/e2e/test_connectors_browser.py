"""Staff open the connectors pages in a browser: an old /sources/ bookmark lands on /connectors/,
the page says "Connecteurs" in French, "Test connection" shows its result without a reload, and
connectors.js finds its words translated by the server."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from connectors.models import Connector
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e


def test_an_old_bookmark_opens_the_connectors_page_and_test_connection_answers_in_place(app_server, browser, tmp_path):
    folder = tmp_path / "handbook"
    folder.mkdir()
    (folder / "leave.md").write_text("# Leave\n\nEmployees receive 27 days of paid annual leave.\n")
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": str(folder)},
                                         is_public=True)
    User.objects.create_superuser("admin", password="admin-pass-123")

    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page.goto(f"{app_server}/sources/")  # the bookmark of the pages' old address
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass-123")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/connectors/$"))
    assert page.locator("h1.page-title").inner_text() == "Connecteurs"
    assert page.locator(".brand-name").inner_text() == "Connecteurs"

    page.get_by_role("link", name="Handbook").first.click()
    page.wait_for_url(re.compile(rf".*/connectors/{connector.id}/$"))
    page.locator("#test-form button").click()
    page.wait_for_selector("#test-result:not([hidden]) [data-test-message]")
    assert page.url.endswith(f"/connectors/{connector.id}/")  # answered in place, no reload
    assert page.locator("[data-test-message]").inner_text().startswith("✓")
    # the words connectors.js shows, as the server translated them for it
    words = page.evaluate("() => ({...document.getElementById('connectors-strings').dataset})")
    assert words["connectorAccess"] == "les accès du connecteur" and words["idle"] == "Inactif", words
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "connector-test-connection.png"))
