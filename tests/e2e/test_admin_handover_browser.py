"""An admin deletes a colleague's account in the Django admin, in a real browser: before confirming
the page says which libraries become theirs and which library limits that takes them over, and
afterwards the message says it again; nothing of the libraries is lost.
Screenshot: docs/screenshots/admin-user-delete-handover.png (the confirmation page)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile

from connectors.libraries import library_create, library_files_upload, library_share_set
from connectors.models import Connector
from tests.conftest import spawn_web, stop_process

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def admin_app(transactional_db, settings, tmp_path):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    settings.LIBRARY_MAX_LIBRARIES = 2
    process, url = spawn_web("web-admin-handover", UPLOAD_ROOT=str(settings.UPLOAD_ROOT), LIBRARY_MAX_LIBRARIES="2")
    try:
        yield url
    finally:
        stop_process(process)


def library(owner, name: str, text: str):
    made = library_create(owner=owner, name=name)
    library_files_upload(library=made, files=[SimpleUploadedFile(f"{name.lower()}.md", text.encode())])
    return made


def test_the_admin_sees_the_limits_a_handover_takes_them_over_before_and_after(admin_app, browser):
    admin = User.objects.create_superuser("admin", password="admin-pass-123")
    owner = User.objects.create_user("owner", password="owner-pass-123")
    owner.groups.add(Group.objects.create(name="engineering"))
    library(admin, "Admin notes", "# Notes\n\nThe admin's own notes.\n")
    orion = library(owner, "Orion", "# Orion plan\n\nThe Orion launch budget is 95,000 euros.\n")
    library_share_set(library=orion, group_names=["engineering"], usernames=[])
    vega = library(owner, "Vega", "# Vega\n\nThe Vega dome opens at dusk.\n")
    library_share_set(library=vega, group_names=["engineering"], usernames=[])

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{admin_app}/admin/auth/user/{owner.pk}/delete/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass-123")
    page.locator("input[type=submit]").click()
    page.wait_for_url(re.compile(rf".*/admin/auth/user/{owner.pk}/delete/$"))
    over = page.locator("#library-handover-over")
    over.wait_for()
    assert "After the handover you will be over your library limits: 3 libraries, 1 more than the limit of 2 " \
           "(LIBRARY_MAX_LIBRARIES)." in over.inner_text()
    assert "they become yours, with their files, index and sharing: Orion, Vega." in \
           page.locator("#library-handover").inner_text()
    # shown above the button that confirms, where the admin reads before clicking
    assert over.bounding_box()["y"] < page.locator("input[type=submit][value]").last.bounding_box()["y"]
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-user-delete-handover.png"), full_page=True)

    page.locator("form input[type=submit]").last.click()
    page.wait_for_url(re.compile(r".*/admin/auth/user/$"))
    messages = page.locator("ul.messagelist").inner_text()
    assert "You are now over your library limits: 3 libraries, 1 more than the limit of 2" in messages
    assert not User.objects.filter(username="owner").exists()
    assert sorted(Connector.objects.filter(owner=admin).values_list("name", flat=True)) == \
        ["Admin notes", "Orion", "Vega"]
