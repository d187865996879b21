"""Libraries through their services: an ACL that is their sharing (owner, group, colleague,
stranger), revoked at once; limits with clear errors; safe file names; statuses per file."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from assistant.rag.retrieval import retrieve
from connectors.access import document_access_explain
from connectors.libraries import (
    LibraryInvalid, library_create, library_delete, library_file_remove, library_files_upload, library_rename,
    library_share_set,
)
from connectors.library_selectors import libraries_visible, library_files, library_get_visible, library_usage
from connectors.models import Chunk, Connector, Document
from connectors.principals import user_principal
from connectors.selectors import acl_groups_of, documents_visible
from connectors.upload_storage import upload_dir_for
from connectors.uploads import UploadError
from tests.libraries.conftest import build_library, markdown, sync_now

SECRET = "The Zephyr launch is planned for the ninth of March."


def found(user, query: str = "Zephyr launch") -> list[str]:
    """Titles full-text retrieval gives `user` (their real ACL principals)."""
    return [p.title for p in retrieve(embedding=None, groups=acl_groups_of(user), query=query, k=5, mode="fulltext")]


@pytest.fixture
def zephyr(owner):
    return build_library(owner, "Zephyr project", {"zephyr.md": f"# Zephyr plan\n\n{SECRET}\n"})


def test_a_new_library_is_private_to_its_owner(zephyr, owner, teammate, outsider):
    document = Document.objects.get(connector=zephyr)
    assert document.acl_public is False and document.acl_groups == [user_principal(owner.pk)]
    chunk_acls = list(Chunk.objects.filter(document=document).values_list("acl_groups", flat=True))
    assert chunk_acls and all(groups == [user_principal(owner.pk)] for groups in chunk_acls)
    assert found(owner) == ["Zephyr plan"]
    assert found(teammate) == [] and found(outsider) == []
    assert list(libraries_visible(user=teammate)) == []
    assert documents_visible(user=outsider).filter(connector=zephyr).count() == 0
    assert document_access_explain(user=owner, document=document).rule == "library_owner"
    assert not document_access_explain(user=outsider, document=document).allowed


def test_sharing_with_a_group_and_a_colleague_then_unsharing_revokes_at_once(
    zephyr, owner, teammate, outsider, colleague
):
    library_share_set(library=zephyr, group_names=["engineering"], usernames=["colleague"])
    assert found(teammate) == ["Zephyr plan"]  # in the owner's group
    assert found(colleague) == ["Zephyr plan"]  # named
    assert found(outsider) == []  # neither
    assert library_get_visible(user=colleague, library_id=zephyr.id) == zephyr
    document = Document.objects.get(connector=zephyr)
    assert document_access_explain(user=colleague, document=document).rule == "library_colleague"
    assert document_access_explain(user=teammate, document=document).rule == "library_group"

    library_share_set(library=zephyr, group_names=[], usernames=[])  # no sync, no re-embedding
    assert found(teammate) == [] and found(colleague) == []
    assert found(owner) == ["Zephyr plan"]
    with pytest.raises(Connector.DoesNotExist):
        library_get_visible(user=colleague, library_id=zephyr.id)


def test_sharing_with_a_group_the_owner_is_not_in_is_refused(zephyr, owner, outsider):
    with pytest.raises(LibraryInvalid) as refused:
        library_share_set(library=zephyr, group_names=["sales"], usernames=[])
    assert refused.value.field == "groups"
    assert "you are not in “sales”" in refused.value.message
    assert found(outsider) == []
    assert list(zephyr.groups.all()) == []


def test_an_unknown_or_inactive_colleague_is_refused(zephyr, colleague):
    colleague.is_active = False
    colleague.save()
    with pytest.raises(LibraryInvalid) as refused:
        library_share_set(library=zephyr, group_names=[], usernames=["colleague", "nobody-here"])
    assert refused.value.field == "users"
    assert "“colleague”" in refused.value.message and "“nobody-here”" in refused.value.message


def test_a_group_named_after_a_user_principal_grants_nothing(zephyr, owner, outsider):
    impostor = Group.objects.create(name=user_principal(owner.pk))
    outsider.groups.add(impostor)
    assert user_principal(owner.pk) not in acl_groups_of(outsider)
    assert found(outsider) == []


def test_removing_a_file_takes_it_out_of_the_index_at_once(zephyr, owner):
    library_file_remove(library=zephyr, name="zephyr.md")
    assert found(owner) == []
    assert not Document.objects.filter(connector=zephyr).exists()
    assert not (upload_dir_for(zephyr) / "zephyr.md").exists()
    with pytest.raises(UploadError):
        library_file_remove(library=zephyr, name="../zephyr.md")


def test_deleting_a_library_removes_its_documents_chunks_and_files(zephyr, owner, django_capture_on_commit_callbacks):
    folder = upload_dir_for(zephyr)
    assert folder.is_dir()
    with django_capture_on_commit_callbacks(execute=True):
        library_delete(library=zephyr)
    assert found(owner) == []
    assert not Chunk.objects.filter(connector_id=zephyr.id).exists()
    assert not folder.exists()


def test_names_are_unique_per_owner_only(owner, teammate):
    library_create(owner=owner, name="Notes")
    library_create(owner=teammate, name="Notes")  # another owner: fine
    with pytest.raises(LibraryInvalid) as refused:
        library_create(owner=owner, name="  Notes ")
    assert refused.value.field == "name" and "already have" in refused.value.message
    other = library_create(owner=owner, name="Drafts")
    with pytest.raises(LibraryInvalid):
        library_rename(library=other, name="Notes")
    with pytest.raises(LibraryInvalid):
        library_create(owner=owner, name="   ")


def test_the_number_of_libraries_is_limited(owner, settings):
    settings.LIBRARY_MAX_LIBRARIES = 2
    library_create(owner=owner, name="One")
    library_create(owner=owner, name="Two")
    with pytest.raises(LibraryInvalid) as refused:
        library_create(owner=owner, name="Three")
    assert "2 libraries" in refused.value.message


def test_the_file_limit_counts_every_library_of_the_owner(owner, settings):
    settings.LIBRARY_MAX_FILES = 2
    first, second = library_create(owner=owner, name="A"), library_create(owner=owner, name="B")
    assert library_files_upload(library=first, files=[markdown("a.md", "# A\n\nalpha")]).accepted == ["a.md"]
    result = library_files_upload(library=second, files=[markdown("b.md", "# B\n\nbeta"), markdown("c.md", "# C")])
    assert result.accepted == ["b.md"]
    assert "hold 2 files, your limit" in result.refused["c.md"]
    # replacing a file takes no new place
    assert library_files_upload(library=first, files=[markdown("a.md", "# A\n\nalpha two")]).accepted == ["a.md"]
    assert library_usage(owner=owner).files == 2


def test_the_byte_limit_is_checked_before_and_while_storing(owner, settings):
    settings.LIBRARY_MAX_BYTES = 2048
    library = library_create(owner=owner, name="Big")
    assert library_files_upload(library=library, files=[markdown("small.md", "x" * 1500)]).accepted == ["small.md"]
    announced = markdown("big.md", "y" * 1000)
    result = library_files_upload(library=library, files=[announced])
    assert "over your limit of 2 KB" in result.refused["big.md"] and "548 bytes left" in result.refused["big.md"]
    # a size that lies (announced small, streams more) is caught while writing
    lying = SimpleUploadedFile("lying.md", b"z" * 1000)
    lying.size = 10
    result = library_files_upload(library=library, files=[lying])
    assert "over your limit" in result.refused["lying.md"]
    assert sorted(p.name for p in upload_dir_for(library).iterdir()) == ["small.md"]


def test_uploads_get_the_same_content_checks_and_safe_names(owner):
    library = library_create(owner=owner, name="Checks")
    renamed_exe = SimpleUploadedFile("report.pdf", b"MZ\x90\x00 a program")
    traversal = SimpleUploadedFile("../../../etc/cron.d/evil.md", b"# Evil\n\nnot really")
    result = library_files_upload(library=library, files=[renamed_exe, traversal])
    assert "is not a PDF document" in result.refused["report.pdf"]
    assert result.accepted == ["evil.md"]
    assert sorted(p.name for p in upload_dir_for(library).iterdir()) == ["evil.md"]


def test_each_file_shows_queued_then_indexed_or_failed_with_the_reason(owner):
    library = library_create(owner=owner, name="Statuses")
    library_files_upload(
        library=library,
        files=[markdown("good.md", "# Good\n\nUseful text."), SimpleUploadedFile("broken.pdf", b"%PDF-1.4 not a pdf")],
    )
    assert {f.name: f.status for f in library_files(library)} == {"broken.pdf": "queued", "good.md": "queued"}
    sync_now(library)
    files = {f.name: f for f in library_files(library)}
    assert files["good.md"].status == "indexed" and files["good.md"].document_id
    assert files["broken.pdf"].status == "failed" and files["broken.pdf"].reason
