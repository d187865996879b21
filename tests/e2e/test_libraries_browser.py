"""A library in a real browser: create it, upload a real PDF, watch it go from queued to indexed,
then "Ask this library" and get an answer that cites the PDF, with the passage one click away.

The model is the scripted server of the `scripted` fixture (tests/chat/scripted_llm.py): it writes
the answer a capable model would and cites the source block of the uploaded document by the
number the prompt gave it. The sync the upload queued is run by the test process, as a worker
would run it (the web process and the test share the database and UPLOAD_ROOT).
Screenshots: docs/screenshots/libraries.png (the library page), libraries-list.png, libraries-answer.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from connectors.models import Connector, Document, SyncRun
from connectors.sync import sync_run_execute
from tests.chat.scripted_llm import Say
from tests.conftest import ARTIFACTS, spawn_web, stop_process
from tests.e2e.test_chat_browser import log_in

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PDF = ROOT / "samples" / "handbook" / "travel-policy.pdf"
SCREENSHOTS = ROOT / "docs" / "screenshots"
QUESTION = "What is the hotel limit per night in Paris?"


@pytest.fixture
def library_app(transactional_db, settings, tmp_path, scripted):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    model = scripted([Say("Not yet scripted.")])
    process, url = spawn_web(
        "web-libraries", LLM_BASE_URL=model.base_url, LLM_MODEL="scripted", LLM_TOOLS="false",
        LLM_CONNECT_RETRIES="1", LLM_CONTEXT_LENGTH="32768", UPLOAD_ROOT=str(settings.UPLOAD_ROOT),
    )
    try:
        yield url, model
    finally:
        stop_process(process)


def test_a_user_builds_a_library_and_asks_it_a_cited_question(library_app, browser):
    url, model = library_app
    erin = User.objects.create_user("erin", password="erin-pass-123", first_name="Erin")
    erin.groups.add(Group.objects.create(name="travel-desk"))
    User.objects.create_user("sam", password="sam-pass-123")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, url, "erin", "erin-pass-123")

    page.click("#libraries-link")
    page.wait_for_url(re.compile(r".*/libraries/$"))
    page.fill("#id_name", "Travel rules")
    page.fill("#id_description", "Company travel policy and booking notes")
    page.click("#library-create")
    page.wait_for_url(re.compile(r".*/libraries/[0-9a-f-]{36}/$"))
    library = Connector.objects.get(owner__username="erin", name="Travel rules")

    page.set_input_files("#library-files-input", str(PDF))
    page.click("#library-upload")
    page.wait_for_selector("tr[data-file='travel-policy.pdf'][data-status='queued']")
    assert "Uploaded 1 file: travel-policy.pdf" in page.inner_text("main")

    run = SyncRun.objects.get(connector=library, status__in=SyncRun.ACTIVE)
    sync_run_execute(run.id)  # what the sync worker does with the queued run
    # the page follows the file by itself, without a reload
    page.wait_for_selector("tr[data-file='travel-policy.pdf'][data-status='indexed']", timeout=30_000)
    assert page.locator("#library-waiting").count() == 0
    detail_url = page.url.split("#")[0]
    page.goto(detail_url)
    assert "Private: only you see it" in page.inner_text("main")

    # share it with the owner's group and a colleague by name
    page.check("input[name='groups'][value='travel-desk']")
    page.fill("#id_users", "sam")
    page.click("#library-share")
    page.wait_for_selector(".flash-success")
    assert sorted(Document.objects.get(connector=library).acl_groups) == sorted(
        ["travel-desk", f"~user:{erin.pk}", f"~user:{User.objects.get(username='sam').pk}"]
    )
    page.goto(detail_url)
    assert page.is_checked("input[name='groups'][value='travel-desk']") and page.input_value("#id_users") == "sam"
    assert "Shared with travel-desk, sam" in page.inner_text("main")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "libraries.png"), full_page=True)
    page.click("a.brand")  # the list of libraries
    page.wait_for_selector(f"li.library-card[data-library='{library.id}']")
    page.screenshot(path=str(SCREENSHOTS / "libraries-list.png"))
    page.goto(detail_url)

    title = Document.objects.get(connector=library).title
    model.replay([
        Say(f"In London, Paris, Amsterdam and Munich the hotel limit is EUR 190 per night {{cite:{title}}}."),
        Say("Hotel limit in Paris"),  # the conversation's title
    ])
    page.click("#library-ask")
    page.wait_for_url(re.compile(r".*/chat/c/[0-9a-f-]{36}/$"))
    assert "Only: Travel rules" in page.inner_text("#library-pins")
    page.fill("#prompt", QUESTION)
    page.keyboard.press("Enter")
    page.wait_for_selector("article.message-assistant[data-status='complete']", timeout=60_000)
    answer = page.locator("article.message-assistant").last
    assert "EUR 190 per night" in answer.inner_text()
    assert answer.locator("a.cite").count() == 1, answer.inner_html()
    assert "travel" in answer.locator(".source, .answer-source").first.inner_text().lower()
    # the model was given the library's passage, and nothing else was searched
    prompt = "\n".join(str(m.get("content")) for m in model.requests[0]["messages"])
    assert "EUR 190 per night" in prompt
    page.screenshot(path=str(SCREENSHOTS / "libraries-answer.png"))
    # on a phone the pin still fits in the header, beside the assistant picker
    page.set_viewport_size({"width": 390, "height": 844})
    pin = page.locator("#library-pins summary").bounding_box()
    assert pin["x"] >= 0 and pin["x"] + pin["width"] <= 390, pin
    page.screenshot(path=str(ARTIFACTS / "libraries-phone.png"))
    page.set_viewport_size({"width": 1280, "height": 900})

    answer.locator("a.cite").first.click()
    page.wait_for_selector("mark#passage")
    assert "190" in page.locator("mark#passage").inner_text()
