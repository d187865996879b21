"""The libraries pages as owner, teammate (shared by group), colleague (by name), stranger and
staff: another user's library is a 404 at every address, only the owner changes one, errors are
400s that say what to fix, and every form needs its CSRF token."""

from __future__ import annotations

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from assistant.chat.models import Conversation
from connectors.libraries import library_share_set
from connectors.models import Connector, Document
from connectors.upload_storage import upload_dir_for
from tests.libraries.conftest import build_library

OWNER_ONLY = ["rename", "delete", "share", "upload", "file_remove"]


@pytest.fixture
def atlas(owner):
    return build_library(owner, "Atlas budget", {"atlas.md": "# Atlas\n\nThe Atlas budget is 4.2 million euros.\n"})


def post(client, name, library, data=None):
    return client.post(reverse(f"libraries:{name}", args=[library.id]), data or {})


def test_the_owner_creates_a_library_and_sees_it_listed(client, owner):
    client.force_login(owner)
    response = client.post(reverse("libraries:create"), {"name": "Board packs", "description": "2026 meetings"})
    library = Connector.objects.get(owner=owner, name="Board packs")
    assert response.status_code == 302 and response["Location"] == reverse("libraries:detail", args=[library.id])
    assert library.kind == "library" and not library.is_public and upload_dir_for(library).is_dir()
    page = client.get(reverse("libraries:list")).content.decode()
    assert "Board packs" in page and "2026 meetings" in page
    assert "Private: only you see it" in client.get(reverse("libraries:detail", args=[library.id])).content.decode()


def test_a_create_without_a_name_is_a_400_that_says_so(client, owner):
    client.force_login(owner)
    response = client.post(reverse("libraries:create"), {"name": "   "})
    assert response.status_code == 400 and "Give the library a name." in response.content.decode()
    response = client.post(reverse("libraries:create"), {"name": "a\x00b"})
    assert response.status_code == 400 and "'name' contains a NUL character" in html.unescape(response.content.decode())


def test_a_stranger_gets_404_at_every_address_of_the_library(client, atlas, outsider, staff):
    for user in (outsider, staff):  # staff too: a library is its owner's, not the admins'
        client.force_login(user)
        assert client.get(reverse("libraries:detail", args=[atlas.id])).status_code == 404
        for name in [*OWNER_ONLY, "ask"]:
            assert post(client, name, atlas, {"name": "x", "groups": "engineering"}).status_code == 404, name
        assert "Atlas budget" not in client.get(reverse("libraries:list")).content.decode()
    assert Connector.objects.filter(id=atlas.id, name="Atlas budget").exists()
    assert (upload_dir_for(atlas) / "atlas.md").exists()


def test_staff_pages_and_the_admin_never_show_a_library(client, atlas, staff):
    client.force_login(staff)
    document = Document.objects.get(connector=atlas)
    assert client.get(reverse("connectors:detail", args=[atlas.id])).status_code == 404
    assert client.get(reverse("connectors:documents", args=[atlas.id])).status_code == 404
    assert client.get(reverse("connectors:document", args=[document.id])).status_code == 404
    assert client.post(reverse("connectors:action", args=[atlas.id, "delete"])).status_code == 404
    assert client.get(reverse("connectors:create", args=["library"])).status_code == 404
    assert "Atlas budget" not in client.get(reverse("connectors:list")).content.decode()
    assert client.get(reverse("admin:connectors_connector_change", args=[atlas.id])).status_code in (302, 404)
    assert "Atlas budget" not in client.get(reverse("admin:connectors_connector_changelist")).content.decode()
    assert "Atlas budget" not in client.get(reverse("admin:connectors_document_changelist")).content.decode()
    assert client.get(reverse("chat:document", args=[document.id])).status_code == 404  # not shared with staff


def test_shared_readers_see_it_but_only_the_owner_changes_it(client, atlas, teammate, colleague):
    library_share_set(library=atlas, group_names=["engineering"], usernames=["colleague"])
    for reader in (teammate, colleague):
        client.force_login(reader)
        page = client.get(reverse("libraries:detail", args=[atlas.id]))
        assert page.status_code == 200 and "atlas.md" in page.content.decode()
        assert "Shared with you by owner" in page.content.decode()
        assert "Atlas budget" in client.get(reverse("libraries:list")).content.decode()
        for name in OWNER_ONLY:
            assert post(client, name, atlas, {"name": "atlas.md"}).status_code == 404, name
    assert (upload_dir_for(atlas) / "atlas.md").exists()


def test_sharing_with_a_group_you_are_not_in_is_a_clear_400(client, atlas, owner, outsider):
    client.force_login(owner)
    response = post(client, "share", atlas, {"groups": ["engineering", "sales"], "users": ""})
    assert response.status_code == 400
    assert "You can share only with groups you belong to; you are not in “sales”." in response.content.decode()
    assert list(atlas.groups.all()) == []
    client.force_login(outsider)
    assert client.get(reverse("libraries:detail", args=[atlas.id])).status_code == 404


def test_the_owner_shares_and_unshares_from_the_page(client, atlas, owner, teammate, colleague):
    client.force_login(owner)
    response = post(client, "share", atlas, {"groups": ["engineering"], "users": "colleague, nobody"})
    assert response.status_code == 400 and "“nobody”" in response.content.decode()
    response = post(client, "share", atlas, {"groups": ["engineering"], "users": "colleague"})
    assert response.status_code == 302
    assert Document.objects.get(connector=atlas).acl_groups == sorted(
        ["engineering", f"~user:{owner.pk}", f"~user:{colleague.pk}"]
    )
    response = post(client, "share", atlas, {"users": ""})
    assert response.status_code == 302
    assert Document.objects.get(connector=atlas).acl_groups == [f"~user:{owner.pk}"]
    client.force_login(colleague)
    assert client.get(reverse("libraries:detail", args=[atlas.id])).status_code == 404


def test_upload_shows_each_file_and_a_refusal_says_why(client, owner, settings):
    settings.LIBRARY_MAX_FILES = 1
    client.force_login(owner)
    client.post(reverse("libraries:create"), {"name": "Limits"})
    library = Connector.objects.get(owner=owner, name="Limits")
    response = client.post(
        reverse("libraries:upload", args=[library.id]),
        {"files": [SimpleUploadedFile("one.md", b"# One\n\nfirst"), SimpleUploadedFile("two.md", b"# Two\n\nsecond")]},
        follow=True,
    )
    page = response.content.decode()
    assert "Uploaded 1 file: one.md" in page
    assert "Refused two.md: Your libraries hold 1 file, your limit" in page
    assert 'data-file="one.md" data-status="queued"' in page
    assert client.post(reverse("libraries:upload", args=[library.id]), {}).status_code == 400


def test_removing_a_file_and_deleting_the_library_from_the_page(client, atlas, owner):
    client.force_login(owner)
    response = post(client, "file_remove", atlas, {"name": "../../atlas.md"})
    assert response.status_code == 400 and (upload_dir_for(atlas) / "atlas.md").exists()
    assert post(client, "file_remove", atlas, {"name": "atlas.md"}).status_code == 302
    assert not Document.objects.filter(connector=atlas).exists()
    assert post(client, "delete", atlas).status_code == 302
    assert not Connector.objects.filter(id=atlas.id).exists()
    assert client.get(reverse("libraries:detail", args=[atlas.id])).status_code == 404


def test_every_form_needs_its_csrf_token(atlas, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(reverse("libraries:create"), {"name": "No token"}).status_code == 403
    for name in [*OWNER_ONLY, "ask"]:
        assert post(client, name, atlas, {"name": "atlas.md"}).status_code == 403, name
    assert Connector.objects.filter(id=atlas.id).exists() and not Connector.objects.filter(name="No token").exists()


def test_ask_starts_a_conversation_pinned_to_the_library(client, atlas, owner, teammate):
    client.force_login(owner)
    response = post(client, "ask", atlas)
    conversation = Conversation.objects.get(user=owner)
    assert response["Location"] == conversation.get_absolute_url()
    assert list(conversation.libraries.all()) == [atlas]
    page = client.get(conversation.get_absolute_url()).content.decode()
    assert "Only: Atlas budget" in page


def test_pins_take_only_libraries_the_user_may_read(client, atlas, owner, outsider):
    client.force_login(outsider)
    conversation = Conversation.objects.create(user=outsider)
    url = reverse("chat:libraries", args=[conversation.id])
    response = client.post(url, {"libraries": [str(atlas.id)]})
    assert response.status_code == 400 and "not shared with you" in response.content.decode()
    response = client.post(reverse("chat:libraries_new"), {"libraries": [str(atlas.id)]})
    assert response.status_code == 400
    response = client.post(url, {"libraries": ["not-a-uuid"]})
    assert response.status_code == 400
    assert conversation.libraries.count() == 0
    # someone else's conversation: 404
    client.force_login(owner)
    assert client.post(url, {"libraries": [str(atlas.id)]}).status_code == 404
    mine = Conversation.objects.create(user=owner)
    response = client.post(reverse("chat:libraries", args=[mine.id]), {"libraries": [str(atlas.id)]})
    assert response.status_code == 302 and list(mine.libraries.all()) == [atlas]
    response = client.post(reverse("chat:libraries", args=[mine.id]), {})  # untick all: unpinned
    assert response.status_code == 302 and mine.libraries.count() == 0
