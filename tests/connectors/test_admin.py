"""Admins create a folder connector and press "Sync now" in Django admin."""

from __future__ import annotations

from django.urls import reverse

from connectors.models import Connector, SyncRun


INLINE_MANAGEMENT = {"runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0"}


def test_staff_creates_a_folder_connector_with_validated_settings(client, staff, tmp_path):
    client.force_login(staff)
    url = reverse("admin:connectors_connector_add")
    bad = client.post(url, {"name": "Docs", "kind": "folder", "config": '{"path": "docs", "colour": 1}', **INLINE_MANAGEMENT})
    assert bad.status_code == 200
    body = bad.content.decode()
    assert "Invalid folder settings" in body and "colour" in body
    assert not Connector.objects.exists()

    good = client.post(
        url, {"name": "Docs", "kind": "folder", "config": f'{{"path": "{tmp_path}"}}', "is_public": "on", **INLINE_MANAGEMENT}
    )
    assert good.status_code == 302
    assert Connector.objects.get(name="Docs").config == {"path": str(tmp_path)}


def test_sync_now_queues_one_run_and_the_page_shows_it(client, staff, tmp_path, django_capture_on_commit_callbacks):
    connector = Connector.objects.create(name="Docs", kind="folder", config={"path": str(tmp_path)})
    client.force_login(staff)
    sync_url = reverse("admin:connectors_connector_sync", args=[connector.id])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(sync_url)
        client.post(sync_url)  # a double click queues nothing more
    assert response.status_code == 302
    assert len(callbacks) == 1
    run = SyncRun.objects.get(connector=connector)
    assert run.status == SyncRun.Status.QUEUED
    page = client.get(reverse("admin:connectors_connector_change", args=[connector.id])).content.decode()
    assert "Sync now" in page and "Queued" in page


def test_non_staff_cannot_sync(client, outsider, tmp_path):
    connector = Connector.objects.create(name="Docs", kind="folder", config={"path": str(tmp_path)})
    client.force_login(outsider)
    response = client.post(reverse("admin:connectors_connector_sync", args=[connector.id]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not SyncRun.objects.exists()


def test_deleting_an_upload_connector_in_the_admin_removes_its_folder(client, staff, settings, tmp_path,
                                                                       django_capture_on_commit_callbacks):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    uploads = Connector.objects.create(name="Uploads", kind="upload")
    folder = settings.UPLOAD_ROOT / str(uploads.id)
    folder.mkdir(parents=True)
    (folder / "plan.md").write_text("# Plan")
    folder_source = Connector.objects.create(name="Docs", kind="folder", config={"path": str(tmp_path)})
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:connectors_connector_changelist"), {
            "action": "delete_selected", "_selected_action": [str(uploads.id), str(folder_source.id)], "post": "yes"})
    assert response.status_code == 302 and not Connector.objects.exists()
    assert not folder.exists() and tmp_path.is_dir()  # a folder connector's own folder is never touched
