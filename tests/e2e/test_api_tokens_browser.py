"""An employee creates an API token in the browser, a tool uses it, the employee revokes it."""

from __future__ import annotations

import re

import httpx
import pytest
from django.contrib.auth.models import User

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e


def test_employee_creates_uses_and_revokes_an_api_token(app_server, browser):
    User.objects.create_user("dev", password="dev-pass-12345")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{app_server}/chat/")
    page.fill("#id_username", "dev")
    page.fill("#id_password", "dev-pass-12345")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/chat/$"))

    page.click("#user-menu summary")
    page.click("#api-tokens-link")
    page.wait_for_url(re.compile(r".*/accounts/tokens/$"))
    assert page.locator("#tokens-empty").is_visible()

    page.fill("#id_name", "My script")
    page.select_option("#id_expires_in_days", "30")
    page.click("#token-create")
    secret = page.locator("#token-secret").input_value()
    assert secret.startswith("ea_")
    assert page.get_by_text("shown only this once").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-token-created.png"))

    # a tool uses it
    models = httpx.get(f"{app_server}/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 200

    # the list shows the token by its prefix and its last use, never the secret again
    page.goto(f"{app_server}/accounts/tokens/")
    row = page.locator("tr[data-token]")
    assert row.count() == 1 and "My script" in row.inner_text()
    assert secret not in page.content() and secret[:9] in row.inner_text()
    assert "Just now" in row.locator("[data-last-used]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "api-tokens.png"))

    row.get_by_role("button", name="Revoke").click()
    page.wait_for_selector(".badge-token-revoked")
    assert "revoked" in page.locator(".flash-list").inner_text()
    refused = httpx.get(f"{app_server}/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
