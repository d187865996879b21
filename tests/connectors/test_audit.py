"""The audit log: admin actions recorded by the services, without secrets; a staff page; read-only admin."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connectors import audit, upload_storage
from connectors.models import AuditEvent, Connector, SyncRun
from connectors.services import connector_delete, connector_save, connector_sync_start, sync_run_cancel


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "leave.md").write_text("# Leave\n\n27 days.\n")
    return tmp_path


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def events(action=None):
    queryset = AuditEvent.objects.order_by("created_at")
    return list(queryset.filter(action=action) if action else queryset)


def test_creating_changing_and_deleting_a_connector_is_recorded(staff, folder, engineering, sales):
    connector = connector_save(name="Handbook", kind="folder", config={"path": str(folder)}, groups=[engineering],
                               actor=staff)
    (created,) = events(audit.CONNECTOR_CREATED)
    assert created.actor == staff and created.actor_name == "admin"
    assert created.target_type == "connectors.connector" and created.target_id == str(connector.id)
    assert created.details["groups"] == ["engineering"] and created.details["kind"] == "folder"

    connector_save(connector=connector, name="Handbook 2", kind="folder", config={"path": str(folder)},
                   groups=[engineering, sales], is_public=False, actor=staff)
    (changed,) = events(audit.CONNECTOR_CHANGED)
    assert changed.details["name"] == {"from": "Handbook", "to": "Handbook 2"}
    (acl,) = events(audit.ACL_CHANGED)
    assert acl.details["added"] == ["sales"] and acl.details["removed"] == []
    assert acl.details["groups"] == {"from": ["engineering"], "to": ["engineering", "sales"]}

    connector_id = str(connector.id)
    connector_delete(connector=connector, actor=staff)
    (deleted,) = events(audit.CONNECTOR_DELETED)
    assert deleted.target_label == "Handbook 2"
    # history outlives the connector
    assert AuditEvent.objects.filter(target_id=connector_id).count() == 4


def test_saving_without_changes_records_nothing_new(staff, folder):
    connector = connector_save(name="Handbook", kind="folder", config={"path": str(folder)}, actor=staff)
    connector_save(connector=connector, name="Handbook", kind="folder", config={"path": str(folder)}, actor=staff)
    assert [e.action for e in events()] == [audit.CONNECTOR_CREATED]


def test_secrets_never_reach_the_audit_log(staff, monkeypatch):
    from connectors.sources.base import Source, SourceConfig
    from connectors.sources.registry import SOURCES

    class TokenSource(Source):
        kind = "token-test"
        label = "Token test"
        secret_fields = ("api_token",)

        class Config(SourceConfig):
            url: str
            api_token: str

    monkeypatch.setitem(SOURCES, "token-test", TokenSource)
    connector = connector_save(name="Wiki", kind="token-test", config={"url": "https://wiki"},
                               secrets={"api_token": "tok-SUPER-SECRET-1"}, actor=staff)
    connector_save(connector=connector, name="Wiki", kind="token-test", config={"url": "https://wiki2"},
                   secrets={"api_token": "tok-SUPER-SECRET-2"}, actor=staff)
    stored = json.dumps([e.details for e in events()])
    assert "SUPER-SECRET" not in stored
    (changed,) = events(audit.CONNECTOR_CHANGED)
    assert changed.details["protected_fields_changed"] == ["api_token"]
    assert changed.details["config"] == {"url": {"from": "https://wiki", "to": "https://wiki2"}}


def test_scrub_hides_secret_looking_keys_at_any_depth():
    details = {"password": "p", "nested": [{"api_key": "k", "ok": 1}], "Authorization": "Bearer x", "name": "n"}
    assert audit.scrub(details) == {
        "password": "[hidden]", "nested": [{"api_key": "[hidden]", "ok": 1}], "Authorization": "[hidden]", "name": "n"
    }


def test_manual_syncs_and_cancels_are_recorded_scheduled_ones_are_not(
    staff, folder, django_capture_on_commit_callbacks
):
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": str(folder)})
    run = connector_sync_start(connector=connector, actor=staff)
    sync_run_cancel(run=run, actor=staff)
    connector_sync_start(connector=connector, trigger=SyncRun.Trigger.SCHEDULE)
    assert [e.action for e in events()] == [audit.SYNC_STARTED, audit.SYNC_CANCELLED]
    assert events()[0].details["run"] == str(run.id)


def test_any_app_can_record_an_export(staff):
    event = audit.audit_record(actor=staff, action=audit.EXPORTED, target=("feedback", "", "Feedback CSV"),
                               details={"rows": 12, "filters": {"rating": "down"}})
    assert event.target_type == "feedback" and event.target_label == "Feedback CSV" and event.details["rows"] == 12


def test_views_record_the_actor_and_client_address(staff_client, staff, folder, django_capture_on_commit_callbacks):
    response = staff_client.post(
        reverse("connectors:create", args=["folder"]),
        {"name": "Handbook", "path": str(folder), "recursive": "on", "max_file_bytes": "1000000"},
        REMOTE_ADDR="192.0.2.7",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    connector = Connector.objects.get(name="Handbook")
    staff_client.post(reverse("connectors:action", args=[connector.id, "sync"]), REMOTE_ADDR="192.0.2.7")
    staff_client.post(reverse("connectors:action", args=[connector.id, "delete"]), REMOTE_ADDR="192.0.2.7")
    recorded = events()
    assert [e.action for e in recorded] == [audit.CONNECTOR_CREATED, audit.SYNC_STARTED, audit.CONNECTOR_DELETED]
    assert all(e.actor == staff and e.ip == "192.0.2.7" for e in recorded)


def test_uploads_are_recorded(staff_client, settings, tmp_path, staff):
    settings.UPLOAD_ROOT = tmp_path
    connector = Connector(kind="upload")

    connector = connector_save(connector=connector, name="Uploads", kind="upload",
                               config={"path": str(upload_storage.upload_dir_for(connector))})
    upload = SimpleUploadedFile("notes.md", b"# Notes\n\nHello.\n", content_type="text/markdown")
    staff_client.post(reverse("connectors:upload", args=[connector.id]), {"files": [upload]})
    (event,) = events(audit.FILES_UPLOADED)
    assert event.details["accepted"] == ["notes.md"] and event.actor == staff


def test_the_audit_page_lists_and_filters_events_for_staff(staff_client, staff, folder):
    connector_save(name="Handbook", kind="folder", config={"path": str(folder)}, actor=staff)
    audit.audit_record(actor=None, action=audit.EXPORTED, target="feedback", details={"rows": 3})
    body = staff_client.get(reverse("connectors:audit")).content.decode()
    assert "connector.created" in body and "Handbook" in body and "export.created" in body
    assert "system" in body  # an event without a person
    filtered = staff_client.get(reverse("connectors:audit"), {"action": "export.created"}).content.decode()
    assert "export.created" in filtered and "Handbook" not in filtered
    assert reverse("connectors:audit") in staff_client.get(reverse("connectors:list")).content.decode()


@pytest.mark.parametrize("persona", ["owner", "outsider"])
def test_the_audit_page_is_404_for_non_staff(client, persona, request):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("connectors:audit")).status_code == 404


def test_the_admin_shows_the_log_read_only(staff_client, staff):
    event = audit.audit_record(actor=staff, action=audit.EXPORTED, target="feedback")
    assert staff_client.get(reverse("admin:connectors_auditevent_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:connectors_auditevent_change", args=[event.id])).status_code == 200
    assert staff_client.get(reverse("admin:connectors_auditevent_add")).status_code == 403
    response = staff_client.post(reverse("admin:connectors_auditevent_delete", args=[event.id]), {"post": "yes"})
    assert response.status_code == 403 and AuditEvent.objects.filter(id=event.id).exists()
