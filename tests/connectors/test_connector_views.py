"""The connectors pages (/connectors/): staff only, generated forms, actions, progress, test connection."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.models import Chunk, Connector, Document, SyncFailure, SyncRun
from connectors.services import connector_source
from connectors.sources.base import Source, SourceConfig, SourceError
from connectors.sources.registry import SOURCES


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "leave.md").write_text("# Leave policy\n\nEmployees receive 27 days of paid annual leave.\n")
    (root / "vpn.txt").write_text("Connect to the VPN before opening the wiki.\n")
    return root


@pytest.fixture
def connector(db, folder) -> Connector:
    return Connector.objects.create(name="Handbook", kind="folder", config={"path": str(folder)}, is_public=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def make_document(connector, external_id, *, status=Document.IndexStatus.INDEXED, title=None, **extra) -> Document:
    text = extra.pop("text", f"Text of {external_id}.")
    return Document.objects.create(
        connector=connector, external_id=external_id, title=title or external_id, text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(), index_status=status, **extra,
    )


def page_urls(connector, run, document):
    return [
        reverse("connectors:list"),
        reverse("connectors:create", args=["folder"]),
        reverse("connectors:detail", args=[connector.id]),
        reverse("connectors:edit", args=[connector.id]),
        reverse("connectors:progress", args=[connector.id]),
        reverse("connectors:documents", args=[connector.id]),
        reverse("connectors:document", args=[document.id]),
        reverse("connectors:run", args=[run.id]),
        reverse("connectors:why", args=[connector.id]) + "?id=leave.md",
    ]


def action_urls(connector):
    urls = [reverse("connectors:action", args=[connector.id, action])
            for action in ("sync", "cancel", "pause", "resume", "reindex", "delete")]
    return urls + [
        reverse("connectors:test", args=[connector.id]),
        reverse("connectors:edit", args=[connector.id]),
        reverse("connectors:create", args=["folder"]),
        reverse("connectors:upload", args=[connector.id]),
        reverse("connectors:file_delete", args=[connector.id]),
    ]


# --- access ------------------------------------------------------------------------------------


def test_it_redirects_anonymous_to_login(client, connector):
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    document = make_document(connector, "leave.md")
    for url in page_urls(connector, run, document):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    for url in action_urls(connector):
        response = client.post(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


@pytest.mark.parametrize("persona", ["outsider", "owner"])
def test_it_rejects_outsider_with_404_everywhere_and_changes_nothing(client, connector, persona, request):
    client.force_login(request.getfixturevalue(persona))
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    document = make_document(connector, "leave.md")
    for url in page_urls(connector, run, document):
        assert client.get(url).status_code == 404, url
    for url in action_urls(connector):
        response = client.post(url, {"name": "Hijacked", "path": "/etc", "is_public": "on"})
        assert response.status_code == 404, url
    connector.refresh_from_db()
    assert connector.name == "Handbook" and connector.config == {"path": connector.config["path"]}
    assert not connector.is_paused
    assert SyncRun.objects.filter(connector=connector).count() == 1
    assert Connector.objects.count() == 1


def test_the_old_sources_addresses_redirect_permanently_to_the_same_connector_page(staff_client, connector):
    documents = reverse("connectors:documents", args=[connector.id])
    assert documents == f"/connectors/{connector.id}/documents/"
    for old, new in [
        ("/sources/", reverse("connectors:list")),
        (f"/sources/{connector.id}/documents/?q=leave&status=indexed", documents + "?q=leave&status=indexed"),
        ("/sources/audit/?action=connector.created", reverse("connectors:audit") + "?action=connector.created"),
    ]:
        response = staff_client.get(old)
        assert response.status_code == 301 and response["Location"] == new, (old, response)
    followed = staff_client.get(f"/sources/{connector.id}/", follow=True)
    assert followed.redirect_chain == [(reverse("connectors:detail", args=[connector.id]), 301)]
    assert "Handbook" in followed.content.decode()


def test_the_old_sources_address_is_404_for_an_outsider_and_sign_in_when_signed_out(client, outsider, connector):
    signed_out = client.get("/sources/audit/")
    assert signed_out.status_code == 302 and signed_out["Location"].startswith(reverse("login") + "?next=")
    client.force_login(outsider)
    assert client.get("/sources/audit/").status_code == 404


# --- list ------------------------------------------------------------------------------------------


def test_list_shows_kind_status_document_count_and_last_error(staff_client, connector):
    make_document(connector, "leave.md")
    make_document(connector, "vpn.txt")
    Connector.objects.filter(id=connector.id).update(
        status=Connector.Status.ERROR, last_error="Folder /srv/gone does not exist", last_success_at=None
    )
    Connector.objects.create(name="Paused one", kind="folder", config={"path": "/srv/x"}, is_paused=True)
    response = staff_client.get(reverse("connectors:list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Handbook" in html and "Folder on the server" in html
    assert 'class="badge badge-error"' in html and 'class="badge badge-paused"' in html
    assert ">2</a>" in html  # the document count links to the browser
    assert "Folder /srv/gone does not exist" in html
    assert "Never synced" in html
    assert reverse("connectors:create", args=["upload"]) in html  # the "New connector" menu
    assert reverse("chat:home") in html  # a way back to the chat


def test_list_freshness_follows_the_interval(staff_client, connector):
    now = timezone.now()
    connector.sync_interval = dt.timedelta(hours=1)
    connector.last_success_at = now - dt.timedelta(minutes=90)
    connector.save()
    assert "badge-fresh" in staff_client.get(reverse("connectors:list")).content.decode()
    Connector.objects.filter(id=connector.id).update(last_success_at=now - dt.timedelta(hours=3))
    assert "badge-stale" in staff_client.get(reverse("connectors:list")).content.decode()


# --- the generated form ---------------------------------------------------------------------------


def test_staff_creates_a_folder_connector_through_the_generated_form(staff_client, folder, engineering):
    page = staff_client.get(reverse("connectors:create", args=["folder"])).content.decode()
    for name in ("path", "include_hidden", "extensions", "recursive", "max_file_bytes", "groups", "sync_interval"):
        assert f'name="{name}"' in page, name
    response = staff_client.post(reverse("connectors:create", args=["folder"]), {
        "name": "Team docs", "path": str(folder), "extensions": ".md, txt", "recursive": "on",
        "max_file_bytes": "1000000", "groups": [engineering.id], "sync_interval": "30",
    })
    connector = Connector.objects.get(name="Team docs")
    assert response.status_code == 302
    assert response["Location"] == reverse("connectors:detail", args=[connector.id])
    assert set(connector.config) == {"path", "include_hidden", "extensions", "recursive", "max_file_bytes"}
    assert connector.config["path"] == str(folder) and connector.config["max_file_bytes"] == 1000000
    assert connector.config["recursive"] is True and connector.config["include_hidden"] is False
    assert connector.acl_group_names() == ["engineering"]
    assert connector.sync_interval == dt.timedelta(minutes=30)
    assert connector_source(connector).config.extensions == [".md", ".txt"]


def test_the_database_form_offers_questions_in_sql_off_by_default(staff_client):
    page = staff_client.get(reverse("connectors:create", args=["postgres"])).content.decode()
    box = re.search(r'<input[^>]*name="sql_questions"[^>]*>', page)
    assert box and "checkbox" in box.group(0) and "checked" not in box.group(0)
    assert "Allow questions in SQL" in page and "Every query is audited" in page


def test_an_invalid_path_is_reported_next_to_the_path_field(staff_client):
    response = staff_client.post(reverse("connectors:create", args=["folder"]), {
        "name": "Bad", "path": "relative/docs", "max_file_bytes": "10",
    })
    assert response.status_code == 400
    form = response.context["form"]
    assert "absolute path" in " ".join(form.errors["path"])
    html = response.content.decode()
    error_at = html.index('id="id_path_error"')
    assert "absolute path" in html[error_at:error_at + 300]
    assert 'aria-invalid="true"' in html[html.index('name="path"') - 200:html.index('name="path"') + 200]
    assert not Connector.objects.filter(name="Bad").exists()


def test_an_unsupported_extension_is_reported_next_to_its_field(staff_client, folder):
    response = staff_client.post(reverse("connectors:create", args=["folder"]), {
        "name": "Bad", "path": str(folder), "extensions": ".exe", "max_file_bytes": "10",
    })
    assert response.status_code == 400
    assert ".exe is not supported" in " ".join(response.context["form"].errors["extensions"])


def test_an_unknown_setting_cannot_be_smuggled_through_the_form(staff_client, folder):
    response = staff_client.post(reverse("connectors:create", args=["folder"]), {
        "name": "Docs", "path": str(folder), "max_file_bytes": "10", "evil": "1", "config": '{"evil": 1}',
    })
    assert response.status_code == 302
    assert "evil" not in Connector.objects.get(name="Docs").config


def test_a_duplicate_name_is_reported_next_to_the_name_field(staff_client, connector, folder):
    response = staff_client.post(reverse("connectors:create", args=["folder"]), {
        "name": "Handbook", "path": str(folder), "max_file_bytes": "10",
    })
    assert response.status_code == 400
    assert "already exists" in " ".join(response.context["form"].errors["name"])


def test_edit_changes_settings_and_keeps_the_kind(staff_client, connector, folder):
    page = staff_client.get(reverse("connectors:edit", args=[connector.id])).content.decode()
    assert str(folder) in page
    response = staff_client.post(reverse("connectors:edit", args=[connector.id]), {
        "name": "Handbook v2", "path": str(folder), "max_file_bytes": "2048", "is_public": "on",
    })
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.name == "Handbook v2" and connector.kind == "folder"
    assert connector.config["max_file_bytes"] == 2048 and connector.config["recursive"] is False


def test_an_unknown_kind_is_404(staff_client):
    assert staff_client.get(reverse("connectors:create", args=["ftp"])).status_code == 404


class TokenSource(Source):
    kind = "tokened"
    label = "Service with a token"
    secret_fields = ("token",)

    class Config(SourceConfig):
        url: str
        token: str

    def check(self) -> str:
        if self.config.token != "s3cr3t-token-value":
            raise SourceError("The service refused the token.")
        return "Connected"


@pytest.fixture
def token_kind(monkeypatch):
    monkeypatch.setitem(SOURCES, TokenSource.kind, TokenSource)
    return TokenSource.kind


def test_a_stored_secret_is_never_rendered_and_an_empty_input_keeps_it(staff_client, token_kind):
    secret = "s3cr3t-token-value"
    create = reverse("connectors:create", args=[token_kind])
    assert 'type="password"' in staff_client.get(create).content.decode()
    response = staff_client.post(create, {"name": "Svc", "url": "https://svc.example", "token": secret})
    assert response.status_code == 302
    connector = Connector.objects.get(name="Svc")
    assert secret not in str(connector.config) and secret not in connector.encrypted_secrets

    edit = reverse("connectors:edit", args=[connector.id])
    page = staff_client.get(edit).content.decode()
    assert secret not in page
    assert "Leave empty to keep the stored value" in page
    # A failing save re-renders the form: the typed secret is not echoed back either.
    retyped = {"name": "", "url": "https://svc.example", "token": "new-secret-typed"}
    page = staff_client.post(edit, retyped).content.decode()
    assert "new-secret-typed" not in page and secret not in page

    response = staff_client.post(edit, {"name": "Svc", "url": "https://svc2.example", "token": ""})
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector_source(connector).config.token == secret
    assert connector.config == {"url": "https://svc2.example"}

    detail = staff_client.get(reverse("connectors:detail", args=[connector.id])).content.decode()
    assert secret not in detail
    result = staff_client.post(reverse("connectors:test", args=[connector.id])).json()
    assert result == {"ok": True, "message": "Connected", "preview": []}


def test_a_missing_secret_is_reported_next_to_its_field(staff_client, token_kind):
    response = staff_client.post(reverse("connectors:create", args=[token_kind]), {"name": "Svc", "url": "u"})
    assert response.status_code == 400
    assert response.context["form"].errors["token"]


def test_creating_an_upload_connector_sets_its_folder_and_offers_the_file_picker(staff_client, settings, tmp_path):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    page = staff_client.get(reverse("connectors:create", args=["upload"])).content.decode()
    assert 'name="path"' not in page
    response = staff_client.post(reverse("connectors:create", args=["upload"]), {"name": "Board packs", "path": "/etc"})
    connector = Connector.objects.get(name="Board packs")
    assert response.status_code == 302
    assert response["Location"] == reverse("connectors:detail", args=[connector.id]) + "#upload"
    assert connector.config == {"path": str(tmp_path / "uploads" / str(connector.id))}
    assert (tmp_path / "uploads" / str(connector.id)).is_dir()
    detail = staff_client.get(response["Location"]).content.decode()
    assert 'type="file"' in detail and "multiple" in detail and 'enctype="multipart/form-data"' in detail


# --- actions -------------------------------------------------------------------------------------


def test_sync_now_queues_exactly_one_run(staff_client, connector, django_capture_on_commit_callbacks):
    url = reverse("connectors:action", args=[connector.id, "sync"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = staff_client.post(url)
        second = staff_client.post(url)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == reverse("connectors:detail", args=[connector.id])
    runs = SyncRun.objects.filter(connector=connector)
    assert runs.count() == 1 and runs.get().status == SyncRun.Status.QUEUED
    assert runs.get().trigger == SyncRun.Trigger.MANUAL
    assert len(callbacks) == 1
    page = staff_client.get(reverse("connectors:detail", args=[connector.id])).content.decode()
    assert "Cancel sync" in page and 'data-active="true"' in page


def test_cancel_marks_the_active_run_cancelled(staff_client, connector):
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING, started_at=timezone.now())
    response = staff_client.post(reverse("connectors:action", args=[connector.id, "cancel"]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED and run.finished_at is not None


def test_pause_and_resume(staff_client, connector):
    staff_client.post(reverse("connectors:action", args=[connector.id, "pause"]))
    connector.refresh_from_db()
    assert connector.is_paused
    assert "Resume" in staff_client.get(reverse("connectors:detail", args=[connector.id])).content.decode()
    staff_client.post(reverse("connectors:action", args=[connector.id, "resume"]))
    connector.refresh_from_db()
    assert not connector.is_paused


def test_reindex_queues_a_reindex_run(staff_client, connector, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(reverse("connectors:action", args=[connector.id, "reindex"]))
    assert SyncRun.objects.get(connector=connector).trigger == SyncRun.Trigger.REINDEX


def test_actions_refuse_get(staff_client, connector):
    assert staff_client.get(reverse("connectors:action", args=[connector.id, "sync"])).status_code == 405
    assert not SyncRun.objects.exists()


def test_delete_removes_the_connector_and_its_documents(staff_client, connector):
    make_document(connector, "leave.md")
    response = staff_client.post(reverse("connectors:action", args=[connector.id, "delete"]))
    assert response.status_code == 302 and response["Location"] == reverse("connectors:list")
    assert not Connector.objects.exists() and not Document.objects.exists()


# --- progress and test connection ------------------------------------------------------------------


def test_progress_reports_the_running_run(staff_client, connector):
    run = SyncRun.objects.create(
        connector=connector, status=SyncRun.Status.RUNNING, started_at=timezone.now(),
        seen=5, added=3, updated=1, unchanged=1, failed=0, total=10, to_index=4, indexed=2, notes="slow source",
    )
    data = staff_client.get(reverse("connectors:progress", args=[connector.id])).json()
    assert data["status"] == "syncing" and data["active"] is True
    assert data["connector"]["document_count"] == 0
    assert data["run"]["id"] == str(run.id)
    assert {k: data["run"][k] for k in ("seen", "added", "updated", "unchanged", "deleted", "failed")} == {
        "seen": 5, "added": 3, "updated": 1, "unchanged": 1, "deleted": 0, "failed": 0,
    }
    assert data["run"]["total"] == 10 and data["run"]["to_index"] == 4 and data["run"]["indexed"] == 2
    assert data["run"]["fetch_done"] is False
    assert data["run"]["progress_percent"] == run.progress_percent == 50
    assert data["run"]["notes"] == "slow source" and data["run"]["error"] == ""


def test_progress_when_idle(staff_client, connector):
    data = staff_client.get(reverse("connectors:progress", args=[connector.id])).json()
    assert data == {**data, "status": "idle", "active": False, "run": None}
    SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    data = staff_client.get(reverse("connectors:progress", args=[connector.id])).json()
    assert data["active"] is False and data["run"]["progress_percent"] == 100


def test_test_connection_reports_a_missing_folder_plainly(staff_client, db, tmp_path):
    missing = tmp_path / "nowhere"
    connector = Connector.objects.create(name="Gone", kind="folder", config={"path": str(missing)})
    data = staff_client.post(reverse("connectors:test", args=[connector.id])).json()
    assert data == {"ok": False, "message": f"Folder {missing} does not exist", "preview": []}


def test_test_connection_succeeds_for_a_readable_folder(staff_client, connector):
    data = staff_client.post(reverse("connectors:test", args=[connector.id])).json()
    assert data["ok"] is True and "2 supported files" in data["message"]


def test_test_connection_returns_the_source_preview(staff_client, db, monkeypatch):
    from connectors.sources.base import SourceDocument

    class Previewing(TokenSource):
        kind = "previewing"
        secret_fields = ()

        class Config(SourceConfig):
            url: str

        def check(self):
            return "ok"

        def preview(self, limit):
            return [SourceDocument(external_id=f"row:{i}", title=f"Row {i}", text="x" * 2000, location="t",
                                   acl_groups=("sales",)) for i in range(limit + 3)][:limit]

    monkeypatch.setitem(SOURCES, "previewing", Previewing)
    connector = Connector.objects.create(name="P", kind="previewing", config={"url": "u"})
    data = staff_client.post(reverse("connectors:test", args=[connector.id])).json()
    assert data["ok"] and len(data["preview"]) == 5
    item = data["preview"][0]
    assert item["title"] == "Row 0" and item["location"] == "t" and len(item["text"]) < 700
    assert item["acl"] == {"from_source": True, "public": False, "groups": ["sales"]}


# --- runs, documents, why -----------------------------------------------------------------------


def test_detail_shows_run_history_and_the_run_page_its_failures(staff_client, connector):
    started = timezone.now() - dt.timedelta(seconds=75)
    run = SyncRun.objects.create(
        connector=connector, status=SyncRun.Status.SUCCEEDED, seen=7, added=5, updated=1, unchanged=0, deleted=1,
        failed=1, started_at=started, finished_at=started + dt.timedelta(seconds=75), notes="Deletions skipped",
    )
    SyncFailure.objects.create(run=run, external_id="scan.pdf", reason="The PDF has no text layer.")
    page = staff_client.get(reverse("connectors:detail", args=[connector.id])).content.decode()
    assert "1 min 15 s" in page and "Deletions skipped" in page
    assert reverse("connectors:run", args=[run.id]) in page
    run_page = staff_client.get(reverse("connectors:run", args=[run.id])).content.decode()
    assert "scan.pdf" in run_page and "The PDF has no text layer." in run_page
    assert reverse("connectors:why", args=[connector.id]) + "?id=scan.pdf" in run_page


def test_document_browser_searches_and_shows_acl_and_chunks(staff_client, connector, engineering):
    leave = make_document(connector, "policies/leave.md", title="Leave policy", acl_groups=["engineering"])
    make_document(connector, "vpn.txt", title="VPN", status=Document.IndexStatus.PENDING)
    for i in range(3):
        Chunk.objects.create(document=leave, connector=connector, ordinal=i, text=f"chunk {i}", start_char=i * 10,
                             end_char=i * 10 + 9, token_count=4, embedding=[0.0] * 384, acl_groups=["engineering"])
    url = reverse("connectors:documents", args=[connector.id])
    page = staff_client.get(url, {"q": "LEAVE"}).content.decode()
    assert "Leave policy" in page and "policies/leave.md" in page and "VPN" not in page
    assert ">3<" in page and "engineering" in page
    assert "VPN" in staff_client.get(url, {"q": "vpn.txt"}).content.decode()
    assert "Leave policy" not in staff_client.get(url, {"status": "pending"}).content.decode()

    detail = staff_client.get(reverse("connectors:document", args=[leave.id])).content.decode()
    assert "Text of policies/leave.md." in detail
    assert "chunk 2" in detail and "characters 20–29" in detail and "4 tokens" in detail


def test_why_page_explains_a_missing_item(staff_client, connector, folder):
    (folder / "tool.exe").write_bytes(b"MZ")
    page = staff_client.get(reverse("connectors:why", args=[connector.id]), {"id": "tool.exe"}).content.decode()
    assert "The source does not list tool.exe" in page
    assert ".exe files are not read" in page


def test_unknown_ids_are_404(staff_client, db):
    missing = uuid.uuid4()
    for name in ("detail", "edit", "progress", "documents", "why"):
        assert staff_client.get(reverse(f"connectors:{name}", args=[missing])).status_code == 404
    assert staff_client.get(reverse("connectors:run", args=[missing])).status_code == 404
    assert staff_client.get(reverse("connectors:document", args=[missing])).status_code == 404
