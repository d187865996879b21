"""When a library's owner leaves (assistant/accounts/departures.py, connectors/libraries.py):
nothing of a deleted library stays on disk, whatever deleted it; libraries shared with others are
handed to a successor with their sharing unchanged; a disabled owner's shared libraries keep
serving their readers. Folders are only ever removed under UPLOAD_ROOT (connectors/upload_storage.py)."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from assistant.accounts.departures import account_delete
from assistant.rag.retrieval import retrieve
from connectors.libraries import library_create, library_share_set
from connectors.library_selectors import libraries_visible
from connectors.models import AuditEvent, Connector, Document
from connectors.principals import user_principal
from connectors.selectors import acl_groups_of
from connectors.upload_storage import upload_dir_for, upload_dirs_orphaned_remove
from tests.libraries.conftest import build_library


def found(user, query: str) -> list[str]:
    return [p.title for p in retrieve(embedding=None, groups=acl_groups_of(user), query=query, k=5, mode="fulltext")]


@pytest.fixture
def zephyr(owner):
    """Private to the owner."""
    return build_library(owner, "Zephyr", {"zephyr.md": "# Zephyr plan\n\nThe Zephyr launch budget is 40,000 euros.\n"})


@pytest.fixture
def orion(owner):
    """Shared with the owner's team (engineering)."""
    library = build_library(owner, "Orion", {"orion.md": "# Orion plan\n\nThe Orion launch budget is 95,000 euros.\n"})
    return library_share_set(library=library, group_names=["engineering"], usernames=[])


def test_a_shared_library_goes_to_the_successor_and_a_private_one_is_deleted_with_its_files(
    zephyr, orion, owner, teammate, outsider, django_capture_on_commit_callbacks
):
    owner_principal = user_principal(owner.pk)
    private_folder, shared_folder = upload_dir_for(zephyr), upload_dir_for(orion)
    with django_capture_on_commit_callbacks(execute=True):
        left = account_delete(user=owner, successor=outsider)
    assert (left.deleted, left.handed_over) == (["Zephyr"], ["Orion"])
    assert not private_folder.exists() and not Connector.objects.filter(id=zephyr.id).exists()
    assert not Document.objects.filter(connector_id=zephyr.id).exists()
    assert not User.objects.filter(username="owner").exists()
    # the team still reads Orion; the successor owns it; the departed owner's principal is gone
    orion.refresh_from_db()
    assert orion.owner == outsider and shared_folder.is_dir()
    assert found(teammate, "Orion launch") == ["Orion plan"] and found(outsider, "Orion launch") == ["Orion plan"]
    [acl] = Document.objects.filter(connector=orion).values_list("acl_groups", flat=True)
    assert owner_principal not in acl and user_principal(outsider.pk) in acl and "engineering" in acl
    # the audit log records the deletion, how many libraries went where, and never a library
    event = AuditEvent.objects.get(action="user.deleted")
    assert event.target_label == "owner" and event.details == {
        "libraries_deleted": 1, "libraries_handed_over": 1, "successor": "outsider", "successor_over_limits": []}
    assert not AuditEvent.objects.filter(target_type="connectors.connector").exists()


def test_without_a_successor_every_library_and_folder_goes(zephyr, orion, owner, django_capture_on_commit_callbacks):
    folders = [upload_dir_for(zephyr), upload_dir_for(orion)]
    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(account_delete(user=owner).deleted) == ["Orion", "Zephyr"]
    assert not any(folder.exists() for folder in folders)
    assert not Connector.objects.filter(kind="library").exists()


def test_a_user_deleted_by_any_other_path_leaves_no_library_folder(zephyr, orion, owner,
                                                                   django_capture_on_commit_callbacks):
    folders = [upload_dir_for(zephyr), upload_dir_for(orion)]
    with django_capture_on_commit_callbacks(execute=True):
        User.objects.filter(pk=owner.pk).delete()  # a shell or a script, not account_delete
    assert not any(folder.exists() for folder in folders)


def test_a_name_clash_renames_the_handed_over_library_and_shares_stay(orion, owner, teammate, outsider,
                                                                      django_capture_on_commit_callbacks):
    library_share_set(library=orion, group_names=["engineering"], usernames=["outsider"])
    library_create(owner=teammate, name="Orion")
    with django_capture_on_commit_callbacks(execute=True):
        assert account_delete(user=owner, successor=teammate).handed_over == ["Orion (from owner)"]
    assert sorted(lib.name for lib in libraries_visible(user=teammate)) == ["Orion", "Orion (from owner)"]
    assert [lib.name for lib in libraries_visible(user=outsider)] == ["Orion (from owner)"]


def test_the_command_never_drops_shared_libraries_unasked(zephyr, orion, owner, teammate, capsys,
                                                          django_capture_on_commit_callbacks):
    with pytest.raises(CommandError, match=r"shares 1 library with colleagues \(Orion\).*--libraries-to"):
        call_command("account_delete", "owner")
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("account_delete", "owner", "--libraries-to", "nobody")
    assert User.objects.filter(username="owner").exists() and upload_dir_for(zephyr).is_dir()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("account_delete", "owner", "--libraries-to", "teammate")
    assert "1 library deleted, handed to teammate: Orion" in capsys.readouterr().out
    assert not upload_dir_for(zephyr).exists() and Connector.objects.get(id=orion.id).owner == teammate


def test_the_admin_who_deletes_the_account_takes_over_its_shared_libraries(
    client, zephyr, orion, owner, staff, teammate, django_capture_on_commit_callbacks
):
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:auth_user_delete", args=[owner.pk]), {"post": "yes"}, follow=True)
    assert response.status_code == 200 and "now yours, shared as before: Orion" in response.content.decode()
    assert not User.objects.filter(username="owner").exists() and not upload_dir_for(zephyr).exists()
    assert Connector.objects.get(id=orion.id).owner == staff
    assert found(teammate, "Orion launch") == ["Orion plan"]


def test_a_disabled_owners_shared_library_keeps_serving_its_readers(zephyr, orion, owner, teammate):
    owner.is_active = False
    owner.save()
    assert found(teammate, "Orion launch") == ["Orion plan"]
    assert [lib.name for lib in libraries_visible(user=teammate)] == ["Orion"]
    assert acl_groups_of(owner) == [] and list(libraries_visible(user=owner)) == []
    assert upload_dir_for(zephyr).is_dir()


def test_the_sweep_removes_only_old_folders_of_deleted_connectors_under_the_root(zephyr, upload_root, tmp_path):
    old = time.time() - 2 * 3600
    orphan, young = upload_root / str(uuid.uuid4()), upload_root / str(uuid.uuid4())
    not_ours = upload_root / "backups"
    outside = tmp_path / "outside"
    for folder in (orphan, young, not_ours, outside):
        folder.mkdir()
        (folder / "a.md").write_text("keep?")
    linked = upload_root / str(uuid.uuid4())
    linked.symlink_to(outside, target_is_directory=True)  # a link out of the root: never followed
    for path in (orphan, not_ours, upload_dir_for(zephyr)):
        os.utime(path, (old, old))
    os.utime(linked, (old, old), follow_symlinks=False)
    assert upload_dirs_orphaned_remove() == [orphan.name]
    assert not orphan.exists()
    assert young.is_dir() and not_ours.is_dir() and upload_dir_for(zephyr).is_dir()
    assert (outside / "a.md").read_text() == "keep?" and linked.is_symlink()


def test_the_successor_keeps_the_teams_share_when_changing_the_sharing(client, orion, owner, outsider, teammate,
                                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=owner, successor=outsider)  # outsider is not in engineering
    client.force_login(outsider)
    page = client.get(reverse("libraries:detail", args=[orion.id])).content.decode()
    assert 'name="groups" value="engineering" checked' in page  # offered, so a save does not drop it
    response = client.post(reverse("libraries:share", args=[orion.id]), {"groups": ["engineering", "sales"]})
    assert response.status_code == 302
    assert sorted(orion.groups.values_list("name", flat=True)) == ["engineering", "sales"]
    assert found(teammate, "Orion launch") == ["Orion plan"]
    refused = client.post(reverse("libraries:share", args=[orion.id]), {"groups": ["engineering", "hr"]})
    assert refused.status_code == 400  # a group neither theirs nor already shared with: never widened
