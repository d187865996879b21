"""A successor who takes over a departed colleague's libraries may end up over their own limits
(LIBRARY_MAX_LIBRARIES, LIBRARY_MAX_FILES, LIBRARY_MAX_BYTES). Nothing is lost by the handover;
the admin is told before confirming (the admin's page) and after (the page's message, the
command's output, the audit log) which limit and by how much; and the successor can then add no
library, file or byte until back under, each refusal saying why and what to do."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from assistant.accounts.departures import account_delete
from assistant.rag.retrieval import retrieve
from connectors.libraries import (
    LibraryInvalid, library_create, library_delete, library_file_remove, library_files_upload, library_share_set,
)
from connectors.library_selectors import libraries_handover_preview, library_usage
from connectors.models import AuditEvent, Connector, Document
from connectors.selectors import acl_groups_of
from connectors.upload_storage import upload_dir_for
from tests.libraries.conftest import build_library, markdown

VEGA_ONE = "# Vega one\n\nThe Vega telescope has a mirror of 4.1 metres.\n"
VEGA_TWO = "# Vega two\n\nThe Vega dome opens at dusk.\n"


def found(user, query: str) -> list[str]:
    return sorted(p.title for p in retrieve(embedding=None, groups=acl_groups_of(user), query=query, k=5,
                                            mode="fulltext"))


def on_disk(library: Connector) -> list[str]:
    return sorted(path.name for path in upload_dir_for(library).iterdir() if not path.name.startswith("."))


@pytest.fixture
def departing(owner, colleague):
    """The owner's libraries: Orion (shared with engineering, 1 file), Vega (shared with a colleague
    by name, 2 files) and Zephyr (private, deleted with the account)."""
    orion = build_library(owner, "Orion", {"orion.md": "# Orion plan\n\nThe Orion launch budget is 95,000 euros.\n"})
    library_share_set(library=orion, group_names=["engineering"], usernames=[])
    vega = build_library(owner, "Vega", {"vega1.md": VEGA_ONE, "vega2.md": VEGA_TWO})
    library_share_set(library=vega, group_names=[], usernames=["colleague"])
    build_library(owner, "Zephyr", {"zephyr.md": "# Zephyr\n\nPrivate notes.\n"})
    return orion, vega


@pytest.fixture
def notes(teammate):
    """The successor's own library: 1 file."""
    return build_library(teammate, "Notes", {"notes.md": "# Notes\n\nMy own notes on the budget.\n"})


@pytest.fixture
def tight_limits(settings, departing, notes):
    """Limits the successor is within today (1 library, 1 file) and over once Orion and Vega are
    theirs (3 libraries, 4 files)."""
    settings.LIBRARY_MAX_LIBRARIES, settings.LIBRARY_MAX_FILES = 2, 3
    return settings


def test_the_command_hands_everything_over_and_says_which_limits_the_successor_is_over(
    tight_limits, departing, notes, owner, teammate, colleague, capsys, django_capture_on_commit_callbacks
):
    orion, vega = departing
    with django_capture_on_commit_callbacks(execute=True):
        call_command("account_delete", "owner", "--libraries-to", "teammate")
    out = capsys.readouterr().out
    assert "Deleted owner: 1 library deleted, handed to teammate: Orion, Vega." in out
    assert ("Warning: teammate is now over their library limits: 3 libraries, 1 more than the limit of 2 "
            "(LIBRARY_MAX_LIBRARIES); 4 files, 1 more than the limit of 3 (LIBRARY_MAX_FILES).") in out
    assert "Nothing was lost" in out and "cannot create a library or add files" in out
    # nothing lost: the files, their documents, and the readers' answers are all still there
    assert on_disk(orion) == ["orion.md"] and on_disk(vega) == ["vega1.md", "vega2.md"]
    assert Connector.objects.filter(owner=teammate, kind="library").count() == 3
    assert Document.objects.filter(connector__in=[orion, vega], index_status="indexed").count() == 3
    assert found(colleague, "Vega telescope mirror") == ["Vega one", "Vega two"]  # the colleague still reads both
    assert found(teammate, "Orion launch") == ["Orion plan"]
    # the audit log records which limits and by how much
    event = AuditEvent.objects.get(action="user.deleted")
    assert event.details["successor"] == "teammate" and event.details["libraries_handed_over"] == 2
    assert event.details["successor_over_limits"] == [
        {"limit": "libraries", "setting": "LIBRARY_MAX_LIBRARIES", "used": 3, "max": 2, "over_by": 1},
        {"limit": "files", "setting": "LIBRARY_MAX_FILES", "used": 4, "max": 3, "over_by": 1},
    ]


def test_a_dry_run_says_the_same_before_and_changes_nothing(tight_limits, departing, notes, owner, teammate, capsys):
    call_command("account_delete", "owner", "--libraries-to", "teammate", "--dry-run")
    out = capsys.readouterr().out
    assert "Dry run, nothing changed. Deleting owner would delete 1 library and hand to teammate: Orion, Vega." in out
    assert ("Warning: teammate would be over their library limits: 3 libraries, 1 more than the limit of 2 "
            "(LIBRARY_MAX_LIBRARIES); 4 files, 1 more than the limit of 3 (LIBRARY_MAX_FILES).") in out
    assert User.objects.filter(username="owner").exists() and not AuditEvent.objects.filter(action="user.deleted")
    assert Connector.objects.filter(owner=owner, kind="library").count() == 3
    assert Connector.objects.filter(owner=teammate, kind="library").count() == 1


def test_within_the_limits_the_command_warns_of_nothing(departing, notes, capsys, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("account_delete", "owner", "--libraries-to", "teammate")
    out = capsys.readouterr().out
    assert "handed to teammate: Orion, Vega." in out and "Warning" not in out
    assert AuditEvent.objects.get(action="user.deleted").details["successor_over_limits"] == []


def test_the_over_limit_successor_can_add_no_library_and_no_file_until_back_under(
    tight_limits, departing, notes, owner, teammate, django_capture_on_commit_callbacks
):
    orion, vega = departing
    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=owner, successor=teammate)
    with pytest.raises(LibraryInvalid) as refused:
        library_create(owner=teammate, name="Another")
    assert refused.value.message == (
        "You have 3 libraries, more than your limit of 2 (for example after libraries were handed over to you), "
        "so you cannot create one: delete 2 of them first, or ask an administrator to raise the limit.")
    result = library_files_upload(library=notes, files=[markdown("new.md", "# New\n\nA new file.\n")])
    assert result.accepted == [] and result.refused["new.md"] == (
        "Your libraries hold 4 files, more than your limit of 3 (for example after libraries were handed over to "
        "you), so no file can be added: remove 2 of them first, or ask an administrator to raise the limit.")
    assert on_disk(notes) == ["notes.md"]
    # a new version of a file already there adds no file: still taken
    assert library_files_upload(library=notes, files=[markdown("notes.md", "# Notes\n\nRevised.\n")]).accepted \
        == ["notes.md"]
    # back under the file limit (2 of 3): files may be added again
    library_file_remove(library=vega, name="vega1.md")
    library_file_remove(library=vega, name="vega2.md")
    assert library_files_upload(library=notes, files=[markdown("new.md", "# New\n\nA new file.\n")]).accepted \
        == ["new.md"]
    # at the library limit (deleting one of 3 leaves 2 of 2): the usual refusal; under it, a create works
    with django_capture_on_commit_callbacks(execute=True):
        library_delete(library=vega)
    with pytest.raises(LibraryInvalid, match="You have 2 libraries, the most allowed; delete one first."):
        library_create(owner=teammate, name="Another")
    with django_capture_on_commit_callbacks(execute=True):
        library_delete(library=orion)
    assert library_create(owner=teammate, name="Another").owner == teammate


def test_over_the_byte_limit_no_byte_is_added_but_a_file_may_be_replaced_by_one_no_larger(
    settings, departing, notes, owner, teammate, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=owner, successor=teammate)
    held = library_usage(owner=teammate).bytes
    settings.LIBRARY_MAX_BYTES = held - 100  # e.g. an admin lowered it, or the handover took them over
    assert [(e.limit, e.over_by) for e in library_usage(owner=teammate).over_limits()] == [("bytes", 100)]
    result = library_files_upload(library=notes, files=[markdown("tiny.md", "# T\n")])
    assert result.refused["tiny.md"].startswith(f"Your libraries hold {held} bytes, more than your limit of "
                                                f"{held - 100} bytes")
    assert "remove files to free more than 100 bytes, or ask an administrator to raise the limit" \
        in result.refused["tiny.md"]
    size = (upload_dir_for(notes) / "notes.md").stat().st_size
    bigger = library_files_upload(library=notes, files=[markdown("notes.md", "# Notes\n\n" + "x" * size)])
    assert "A file may still replace one at least as large." in bigger.refused["notes.md"]
    smaller = library_files_upload(library=notes, files=[markdown("notes.md", "# Notes\n\nShort.\n")])
    assert smaller.accepted == ["notes.md"] and library_usage(owner=teammate).bytes < held


def test_the_admin_is_told_before_confirming_and_after(client, tight_limits, departing, notes, owner, staff,
                                                       django_capture_on_commit_callbacks):
    build_library(staff, "Admin notes", {"a.md": "# A\n\none\n", "b.md": "# B\n\ntwo\n"})  # 1 library, 2 files
    client.force_login(staff)
    url = reverse("admin:auth_user_delete", args=[owner.pk])
    page = html.unescape(client.get(url).content.decode())
    assert "2 libraries shared with colleagues are not deleted: they become yours, with their files, index and " \
           "sharing: Orion, Vega." in page
    assert ("After the handover you will be over your library limits: 3 libraries, 1 more than the limit of 2 "
            "(LIBRARY_MAX_LIBRARIES); 5 files, 2 more than the limit of 3 (LIBRARY_MAX_FILES). Nothing will be "
            "lost") in page
    assert page.index('id="library-handover-over"') < page.index('name="post"')  # above the confirm button
    assert "1 library of theirs that is not handed over is deleted with its files" in page
    # Django's list of what goes with the account names no library, file or document: the handed-over
    # ones stay, and a private one is its owner's own
    listed = page[page.index('id="deleted-objects"'):page.index('name="post"')]
    assert "owner" in listed and not any(name in listed for name in ["Orion", "Vega", "Zephyr", "Connector"])
    assert "Connectors:" not in page and "Documents:" not in page and "Users: 1" in page
    assert User.objects.filter(username="owner").exists()  # a look changes nothing
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"post": "yes"}, follow=True)
    done = html.unescape(response.content.decode())
    assert "2 libraries that owner shared with colleagues are now yours, shared as before: Orion, Vega." in done
    assert ("You are now over your library limits: 3 libraries, 1 more than the limit of 2 (LIBRARY_MAX_LIBRARIES); "
            "5 files, 2 more than the limit of 3 (LIBRARY_MAX_FILES). Nothing was lost") in done
    assert sorted(Connector.objects.filter(owner=staff).values_list("name", flat=True)) == \
        ["Admin notes", "Orion", "Vega"]


def test_deleting_selected_users_warns_of_the_limits_all_their_libraries_take_the_admin_over(
    client, tight_limits, departing, owner, teammate, notes, staff
):
    preview = libraries_handover_preview(owners=[owner, teammate], successor=staff)
    assert preview.libraries == ["Orion", "Vega"]  # teammate's Notes is private: deleted, not handed over
    library_share_set(library=notes, group_names=["engineering"], usernames=[])
    client.force_login(staff)
    response = client.post(reverse("admin:auth_user_changelist"),
                           {"action": "delete_selected", "_selected_action": [owner.pk, teammate.pk]})
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and "Are you sure you want to delete the selected users?" in page
    assert "3 libraries shared with colleagues are not deleted: they become yours" in page
    assert "sharing: Notes, Orion, Vega." in page
    assert "3 libraries, 1 more than the limit of 2 (LIBRARY_MAX_LIBRARIES); 4 files, 1 more than the limit of 3" \
        in page
    assert "Orion plan" not in page and "Vega one" not in page  # no library document is listed
    assert User.objects.filter(username__in=["owner", "teammate"]).count() == 2


def test_the_successor_sees_why_on_their_pages_and_when_uploading(client, tight_limits, departing, notes, owner,
                                                                  teammate, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=owner, successor=teammate)
    client.force_login(teammate)
    listing = html.unescape(client.get(reverse("libraries:list")).content.decode())
    assert 'id="library-over-limits"' in listing
    assert "3 libraries, 1 more than the limit of 2" in listing and "4 files, 1 more than the limit of 3" in listing
    assert "you cannot create a library or add files until you are back under your limits" in listing
    refused = client.post(reverse("libraries:create"), {"name": "Another"})
    assert refused.status_code == 400
    assert "You have 3 libraries, more than your limit of 2" in html.unescape(refused.content.decode())
    response = client.post(reverse("libraries:upload", args=[notes.id]),
                           {"files": [markdown("new.md", "# New\n\nA new file.\n")]}, follow=True)
    page = html.unescape(response.content.decode())
    assert "Refused new.md: Your libraries hold 4 files, more than your limit of 3" in page
    assert 'id="library-over-limits"' in page and on_disk(notes) == ["notes.md"]
    french = client.post(reverse("libraries:upload", args=[notes.id]), {"files": [markdown("new.md", "# New\n")]},
                         follow=True, HTTP_ACCEPT_LANGUAGE="fr")
    assert "Vos bibliothèques contiennent 4 fichiers, plus que votre limite de 3" in html.unescape(
        french.content.decode())
