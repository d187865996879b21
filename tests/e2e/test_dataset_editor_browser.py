"""Staff build a PostgreSQL connector to the Chinook sample database in a browser without typing
JSON: "Test connection and list tables", pick a table, its id, a title template, text columns, a
denied column and a group ACL, watch the preview (without the denied column), add a SELECT dataset
(one that writes is refused next to the query; saved anyway, the server's error comes back next to
its field), save; the saved datasets are what was picked. Screenshots (light and dark) go to docs/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from connectors.models import Connector
from tests.connectors.sample_dbs import PG_HOST, PG_PORT, PG_READER

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sample_database_servers")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
INVOICES = "SELECT invoice_id, billing_country, total FROM invoice"
EXPECTED = [{
    "name": "customers",
    "table": "customer",
    "id_columns": ["customer_id"],
    "title_template": "{first_name} {last_name}",
    "text_columns": ["company", "city", "country"],
    "acl": "groups",
    "acl_groups": ["sales"],
    "denied_columns": ["email"],
    "description": "Customers of the store",
}, {
    "name": "invoices",
    "query": INVOICES,
    "id_columns": ["invoice_id"],
    "title_template": "{billing_country}",
}]


@pytest.fixture
def server_for_samples(transactional_db, request, settings, pg_chinook):
    """The live server, with the sample database host allow-listed as an operator would."""
    settings.CONNECTOR_ALLOWED_DB_HOSTS = [PG_HOST]
    return request.getfixturevalue("app_server")


def _shots(page, card) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1100, "height": height})  # no scrolling: the sticky header stays out
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        card.screenshot(path=str(SCREENSHOTS / f"connector-datasets{suffix}.png"), animations="disabled")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 1100, "height": 900})


def test_staff_pick_a_table_and_its_columns_see_the_preview_and_save(server_for_samples, browser, pg_chinook):
    Group.objects.create(name="sales")
    Group.objects.create(name="finance")
    User.objects.create_superuser("admin", password="admin-pass-123")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(f"{server_for_samples}/connectors/new/postgres/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass-123")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/connectors/new/postgres/$"))

    assert page.locator("#id_datasets").is_hidden()  # the editor writes it
    page.fill("#id_name", "Chinook customers")
    page.fill("#id_host", PG_HOST)
    page.fill("#id_port", str(PG_PORT))
    page.fill("#id_database", pg_chinook)
    page.fill("#id_user", PG_READER)
    page.click("[data-editor-connect]")
    page.locator("[data-editor-status]").filter(has_text="Connected to").wait_for()

    card = page.locator(".dataset-card").first
    card.locator('[data-input="table"]').select_option("customer")
    assert card.locator('[data-input="name"]').input_value() == "customer"
    card.locator('[data-input="name"]').fill("customers")
    card.locator('[data-choices="id_columns"] input[value="customer_id"]').check()
    card.locator('[data-input="title_column"]').select_option(label="A template…")
    card.locator('[data-input="title_template"]').fill("{first_name} {last_name}")
    card.locator('[data-choices="denied_columns"] input[value="email"]').check()

    # Every column but the denied one, as the assistant will see them.
    first = card.locator("[data-preview-list] li").first
    first.locator(".preview-title").filter(has_text="Luís Gonçalves").wait_for()
    assert card.locator("[data-preview-list] li").count() == 2
    preview = card.locator("[data-preview-list]").inner_text()
    assert "first_name: Luís" in preview and "@" not in preview and "email" not in preview
    assert "Left out: email." in card.locator("[data-preview-status]").inner_text()
    assert card.locator('[data-choices="text_columns"] input[value="email"]').is_disabled()

    card.locator('[data-input="text_mode"][value="columns"]').check()
    for column in ("company", "city", "country"):
        card.locator(f'[data-choices="text_columns"] input[value="{column}"]').check()
    card.locator('[data-input="acl"][value="groups"]').check()
    card.locator('[data-choices="acl_groups"] input[value="sales"]').check()
    card.locator('[data-input="description"]').fill("Customers of the store")
    first.locator(".preview-text").filter(has_text=re.compile(r"^company: Embraer")).wait_for()
    assert first.locator(".preview-text").inner_text() == (
        "company: Embraer - Empresa Brasileira de Aeronáutica S.A.\ncity: São José dos Campos\ncountry: Brazil"
    )
    assert "visible to sales" in first.locator(".preview-meta").inner_text()
    _shots(page, page.locator("[data-editor-root]"))

    # A second dataset from a SELECT: one that writes is refused next to the query, by the same parser.
    page.click("[data-editor-add]")
    query_card = page.locator(".dataset-card").nth(1)
    query_card.locator('[data-input="name"]').fill("invoices")
    query_card.locator('[data-input="mode"][value="query"]').check()
    query_card.locator('[data-input="query"]').fill("SELECT scratch_write() AS id")
    refused = query_card.locator('[data-error-for="query"]')
    refused.filter(has_text="scratch_write").wait_for()
    assert "not on the list of allowed functions" in refused.inner_text()

    # Saved anyway: the server refuses it and the page comes back with its error next to the field.
    page.get_by_role("button", name="Create connector").click()
    page.wait_for_load_state()
    query_card = page.locator(".dataset-card").nth(1)
    query_card.locator('[data-error-for="id_columns"]').filter(has_text="at least 1 item").wait_for()
    assert query_card.locator('[data-input="query"]').input_value() == "SELECT scratch_write() AS id"
    assert not Connector.objects.exists()
    page.click("[data-editor-connect]")
    page.locator("[data-editor-status]").filter(has_text="Connected to").wait_for()
    assert page.locator(".dataset-card").first.locator('[data-input="table"]').input_value() == "customer"
    query_card.locator('[data-input="query"]').fill(INVOICES)
    query_card.locator('[data-choices="id_columns"] input[value="invoice_id"]').check()
    assert refused.is_hidden()
    query_card.locator('[data-input="title_column"]').select_option("billing_country")
    query_card.locator("[data-preview-list] li .preview-title").filter(has_text="Germany").wait_for()
    assert "total: 1.98" in query_card.locator("[data-preview-list] li").first.inner_text()

    page.get_by_role("button", name="Create connector").click()
    page.wait_for_url(re.compile(r".*/connectors/[0-9a-f-]{36}/$"))
    assert Connector.objects.get(name="Chinook customers").config["datasets"] == EXPECTED

    # Editing it again: the editor lists the tables with the stored password and shows the same picks.
    page.goto(page.url + "edit/")
    page.locator("[data-editor-status]").filter(has_text="Connected to").wait_for()
    card = page.locator(".dataset-card").first
    assert card.locator('[data-input="table"]').input_value() == "customer"
    assert card.locator('[data-choices="denied_columns"] input[value="email"]').is_checked()
    card.locator("[data-preview-list] li").nth(1).wait_for()
    page.locator(".dataset-card").nth(1).locator("[data-preview-list] li").nth(1).wait_for()  # layout settled

    # "Edit as JSON" shows the very JSON that is saved; a broken edit keeps the JSON field open.
    page.click("[data-editor-json]")
    assert json.loads(page.locator("#id_datasets").input_value()) == EXPECTED
    page.fill("#id_datasets", "{broken")
    page.click("[data-editor-back]")
    page.locator("[data-editor-json-error]").filter(has_text="not a JSON list").wait_for()
    assert page.locator("#id_datasets").is_visible()
    page.fill("#id_datasets", json.dumps(EXPECTED[:1]))
    page.click("[data-editor-back]")
    assert page.locator(".dataset-card").count() == 1 and page.locator("#id_datasets").is_hidden()
