"""Staff rebuild the index from the browser: the Data sources page says the index is out of date,
the index page shows the live version, "Rebuild the index" queues the rebuild, a real Celery
worker builds it batch by batch while both pages follow its progress, then the new version goes
live; a user who is not staff gets 404 from the page, the button and the progress.

The web process and the worker run with 64-token chunks, the index was built with 200: the recipe
changed, as after an upgrade. Each document is one batch (EMBEDDING_BATCH_SIZE=1). To see the
progress mid-way without waiting for time, the test holds the last document's row (FOR UPDATE, as
a slow store would): the worker stores every other document, then waits for the row; the test
releases it once the pages showed the progress, and the rebuild completes and switches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from playwright.sync_api import expect

from assistant.celery import app
from connectors.index_version import live_index, live_version_ensure
from connectors.models import Chunk, Document, IndexVersion
from tests.conftest import spawn_celery_worker, spawn_web, stop_process
from tests.connectors.test_index_rebuild import make_connector, sync, write_documents

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DOCUMENTS = 6
#: What changed since the index was built (the web process and the worker are configured so).
NEW_RECIPE = {"CHUNK_TOKENS": "64", "EMBEDDING_BATCH_SIZE": "1"}
WAIT_MS = 120_000  # an upper bound for a busy machine; every wait ends when its condition holds


@pytest.fixture
def indexed(transactional_db, tmp_path):
    """Documents indexed with the default recipe (version 1), by the test process."""
    folder = tmp_path / "policies"
    folder.mkdir()
    write_documents(folder, DOCUMENTS)
    sync(make_connector(folder))
    assert Document.objects.filter(index_status="indexed").count() == DOCUMENTS
    # Its live version, as migration 0007 records it (a transactional test before this one may
    # have flushed that row): built with the default recipe, which the web process no longer has.
    with transaction.atomic():
        live_version_ensure()
    return Chunk.objects.filter(index_version=1).count()


@pytest.fixture
def web(indexed):
    process, url = spawn_web("web-index", **NEW_RECIPE)
    yield url
    stop_process(process)


def sign_in(browser, url: str, username: str, password: str, path: str):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{url}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-submit")
    page.wait_for_url(re.compile(rf".*{re.escape(path)}$"))
    return page


def summary_value(page, term: str):
    """The value beside `term` in the index page's summary."""
    return page.locator(
        f"xpath=//dl[contains(@class, 'summary')]//dt[normalize-space()='{term}']/following-sibling::dd[1]"
    )


def test_staff_rebuild_the_index_and_watch_it_switch(web, indexed, browser):
    User.objects.create_superuser("admin", password="admin-pass-123")
    page = sign_in(browser, web, "admin", "admin-pass-123", "/connectors/")
    expect(page.locator(".alert-error")).to_contain_text("The index is out of date")

    page.locator(".alert-error").get_by_role("link", name="Index").click()
    page.wait_for_url(re.compile(r".*/connectors/index/$"))
    expect(summary_value(page, "Live version")).to_have_text("1")
    expect(summary_value(page, "Chunks")).to_have_text(str(indexed))

    app.control.purge()
    worker = None
    try:
        with transaction.atomic():
            last = Document.objects.select_for_update().order_by("id").last()  # held until released below
            page.click("#index-rebuild")  # no worker yet: the rebuild waits in the queue
            expect(page.locator(".flash-success")).to_contain_text("Rebuild started as version 2")
            expect(page.locator("#index-progress-label")).to_have_text(f"0 of {DOCUMENTS} documents (0%)")

            worker = spawn_celery_worker(queues="index", **NEW_RECIPE)
            done = DOCUMENTS - 1
            percent = int(100 * done / DOCUMENTS)
            # The page reloads itself while building; the worker stores all but the held document.
            expect(page.locator("#index-progress-label")).to_have_text(
                f"{done} of {DOCUMENTS} documents ({percent}%)", timeout=WAIT_MS
            )
            expect(page.locator("#index-progress")).to_have_attribute("value", str(percent))
            expect(summary_value(page, "Live version")).to_have_text("1")
            assert live_index().number == 1  # searches still read the old version
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "index-rebuild.png"), full_page=True)

            # The Data sources page shows the same progress, and follows it without a reload.
            page.goto(f"{web}/connectors/")
            notice = page.locator("#index-notice")
            expect(notice).to_contain_text("The index is being rebuilt (version 2)")
            expect(notice.locator("[data-progress-text]")).to_have_text(f"{percent}%")
            expect(notice.locator("progress")).to_have_attribute("value", str(percent))
            page.screenshot(path=str(SCREENSHOTS / "index-rebuild-sources.png"))
            assert last.chunks.filter(index_version=2).count() == 0
        # released: the worker stores the last document and the new version goes live

        expect(page.locator("#index-notice")).to_have_count(0, timeout=WAIT_MS)  # reloaded at the switch
        expect(page.locator(".alert-error")).to_have_count(0)  # no longer out of date
        assert live_index().number == 2
        assert IndexVersion.objects.get(number=1).state == IndexVersion.State.RETIRED
        new_chunks = Chunk.objects.filter(index_version=2).count()
        assert new_chunks > indexed  # 64-token chunks: more of them
        assert set(Chunk.objects.filter(index_version=2).values_list("document_id", flat=True)) == set(
            Document.objects.values_list("id", flat=True)
        )

        page.goto(f"{web}/connectors/index/")
        expect(summary_value(page, "Live version")).to_have_text("2")
        expect(summary_value(page, "Chunks")).to_have_text(str(new_chunks))
        expect(page.locator("#index-building")).to_have_count(0)
        rows = page.locator("table.table-index-versions tbody tr")
        expect(rows.nth(0)).to_contain_text("Live")
        expect(rows.nth(0).locator("td").nth(4)).to_have_text(f"{DOCUMENTS} / {DOCUMENTS}")
        expect(rows.nth(1)).to_contain_text("Retired")
        expect(rows.nth(1).locator("td").nth(4)).to_have_text("—")  # built before versions counted documents
        page.screenshot(path=str(SCREENSHOTS / "index-rebuild-done.png"), full_page=True)
    finally:
        if worker is not None:
            stop_process(worker)


def test_users_who_are_not_staff_get_404_from_the_index_page_button_and_progress(web, browser):
    User.objects.create_user("reader", password="reader-pass-123")
    page = sign_in(browser, web, "reader", "reader-pass-123", "/chat/")
    for path in ("/connectors/index/", "/connectors/index/progress/", "/connectors/"):
        assert page.goto(f"{web}{path}").status == 404, path
    token = page.context.cookies(web)
    csrf = next(cookie["value"] for cookie in token if cookie["name"] == "csrftoken")
    response = page.request.post(f"{web}/connectors/index/rebuild/", headers={"X-CSRFToken": csrf, "Referer": web})
    assert response.status == 404
    assert not IndexVersion.objects.filter(state=IndexVersion.State.BUILDING).exists()
