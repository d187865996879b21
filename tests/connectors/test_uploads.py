"""Uploading files into an "upload" connector: limits, type by content, safe names, then a sync."""

from __future__ import annotations

import codecs
import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connectors.models import Connector, Document, SyncRun
from connectors.sources.registry import build_source
from connectors.sync import sync_run_execute
from connectors.upload_storage import upload_dir_for
from connectors.uploads import UploadError, file_delete, files_list, files_upload, safe_file_name

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"


@pytest.fixture
def upload_root(settings, tmp_path) -> Path:
    settings.UPLOAD_ROOT = tmp_path / "srv" / "uploads"
    return settings.UPLOAD_ROOT


@pytest.fixture
def connector(db, upload_root) -> Connector:
    connector = Connector(name="Board packs", kind="upload", is_public=True)
    connector.config = {"path": str(upload_dir_for(connector))}
    connector.save()
    return connector


def sample(name: str, *, as_name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(as_name or name, (SAMPLES / name).read_bytes())


def upload(connector, *files, capture):
    with capture(execute=False) as callbacks:
        result = files_upload(connector=connector, files=list(files))
    return result, callbacks


def stored(connector) -> list[str]:
    return sorted(p.name for p in upload_dir_for(connector).iterdir())


def test_the_upload_dir_is_the_connectors_own(connector, upload_root):
    assert upload_dir_for(connector) == upload_root / str(connector.id)
    assert build_source("upload", connector.config).config.path == str(upload_root / str(connector.id))


def test_it_accepts_markdown_pdf_and_docx_and_queues_one_sync(connector, django_capture_on_commit_callbacks):
    result, callbacks = upload(
        connector, sample("employee-handbook.md"), sample("travel-policy.pdf"), sample("onboarding-checklist.docx"),
        capture=django_capture_on_commit_callbacks,
    )
    assert result.refused == {}
    assert result.accepted == ["employee-handbook.md", "travel-policy.pdf", "onboarding-checklist.docx"]
    assert stored(connector) == ["employee-handbook.md", "onboarding-checklist.docx", "travel-policy.pdf"]
    pdf = (SAMPLES / "travel-policy.pdf").read_bytes()
    assert (upload_dir_for(connector) / "travel-policy.pdf").read_bytes() == pdf
    assert SyncRun.objects.filter(connector=connector).count() == 1 and result.run is not None
    assert len(callbacks) == 1


def test_it_refuses_a_file_over_the_size_limit(connector, settings, django_capture_on_commit_callbacks):
    settings.UPLOAD_MAX_BYTES = 2048
    big = SimpleUploadedFile("big.md", b"# Big\n" + b"word " * 1000)
    result, callbacks = upload(connector, big, capture=django_capture_on_commit_callbacks)
    assert result.accepted == []
    assert "over the limit of 2 KB" in result.refused["big.md"]
    assert stored(connector) == []
    assert not SyncRun.objects.exists() and callbacks == []


def test_it_refuses_unsupported_types(connector, django_capture_on_commit_callbacks):
    result, _ = upload(
        connector, SimpleUploadedFile("setup.exe", b"MZ\x90\x00\x03"), SimpleUploadedFile("README", b"hello"),
        capture=django_capture_on_commit_callbacks,
    )
    assert result.refused["setup.exe"].startswith(".exe files are not accepted; upload one of: .csv, .docx")
    assert result.refused["README"].startswith("Files without an extension are not accepted")
    assert stored(connector) == []


def test_it_refuses_a_program_renamed_to_pdf(connector, django_capture_on_commit_callbacks):
    fake = SimpleUploadedFile("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(range(256)) * 4)
    result, _ = upload(connector, fake, capture=django_capture_on_commit_callbacks)
    assert result.refused == {
        "invoice.pdf": "The file is named .pdf but is not a PDF document (its content does not start with %PDF-)."
    }
    assert stored(connector) == []


def test_it_checks_docx_and_text_by_content(connector, django_capture_on_commit_callbacks):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.bin", b"\x00\x01")
    utf16 = codecs.BOM_UTF16_LE + "Ünïcode notes\n".encode("utf-16-le")
    result, _ = upload(
        connector,
        SimpleUploadedFile("letter.docx", archive.getvalue()),
        SimpleUploadedFile("notes.docx", b"plain text, not a zip"),
        SimpleUploadedFile("data.csv", b"a,b\n1,\x00\x002\n"),
        SimpleUploadedFile("latin.txt", "caf\xe9".encode("latin-1")),
        SimpleUploadedFile("empty.txt", b""),
        SimpleUploadedFile("wide.txt", utf16),
        SimpleUploadedFile("bom.md", codecs.BOM_UTF8 + b"# Title\n"),
        capture=django_capture_on_commit_callbacks,
    )
    assert "no word/document.xml inside" in result.refused["letter.docx"]
    assert "not a valid .docx archive" in result.refused["notes.docx"]
    assert "binary data (NUL bytes)" in result.refused["data.csv"]
    assert "not UTF-8 or UTF-16 text" in result.refused["latin.txt"]
    assert result.refused["empty.txt"] == "The file is empty."
    assert result.accepted == ["wide.txt", "bom.md"]
    assert stored(connector) == ["bom.md", "wide.txt"]


def test_a_path_traversal_name_lands_safely_inside_the_upload_dir(connector, upload_root, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    before = {p for p in tmp_path.rglob("*")}
    result, _ = upload(
        connector,
        SimpleUploadedFile("../../etc/passwd.txt", b"root:x:0:0\n"),
        SimpleUploadedFile("..\\..\\windows\\win.txt", b"boot\n"),
        SimpleUploadedFile("C:\\Users\\ann\\My notes.md", b"# Notes\n"),
        capture=django_capture_on_commit_callbacks,
    )
    assert result.refused == {}
    assert result.accepted == ["passwd.txt", "win.txt", "My_notes.md"]
    created = {p for p in tmp_path.rglob("*")} - before
    directory = upload_dir_for(connector)
    assert {p for p in created if p.is_file()} == {directory / "passwd.txt", directory / "win.txt",
                                                    directory / "My_notes.md"}
    assert not (tmp_path / "etc").exists() and not (upload_root / "etc").exists()


def test_it_refuses_hidden_and_empty_names(connector, django_capture_on_commit_callbacks):
    result, _ = upload(
        connector,
        SimpleUploadedFile(".env.txt", b"SECRET=1\n"),
        SimpleUploadedFile("~$draft.docx", b"x"),
        capture=django_capture_on_commit_callbacks,
    )
    assert "Hidden files" in result.refused[".env.txt"]
    assert "lock file" in result.refused["~$draft.docx"]
    assert stored(connector) == []
    # Django already strips directories from uploaded names; the check does not rely on it.
    for name in ("..", "a/..", "", "../", "???"):
        assert safe_file_name(name) == (None, "The file has no usable name."), name
    assert safe_file_name("../../etc/passwd.txt") == ("passwd.txt", None)


def test_nothing_half_written_is_left_behind(connector, settings, django_capture_on_commit_callbacks):
    settings.UPLOAD_MAX_BYTES = 1024
    lying = SimpleUploadedFile("a.txt", b"x" * 5000)
    lying.size = 10  # the announced size lies: the stream is checked as it is written
    result, _ = upload(connector, lying, capture=django_capture_on_commit_callbacks)
    assert "larger than the limit" in result.refused["a.txt"]
    assert list(upload_dir_for(connector).iterdir()) == []


def test_uploading_a_name_again_replaces_the_file(connector, django_capture_on_commit_callbacks):
    upload(connector, SimpleUploadedFile("note.md", b"# One\n"), capture=django_capture_on_commit_callbacks)
    SyncRun.objects.update(status=SyncRun.Status.SUCCEEDED)
    result, _ = upload(connector, SimpleUploadedFile("note.md", b"# Two\n"), capture=django_capture_on_commit_callbacks)
    assert result.accepted == ["note.md"]
    assert (upload_dir_for(connector) / "note.md").read_bytes() == b"# Two\n"
    assert [f.name for f in files_list(connector)] == ["note.md"]


def test_files_go_only_into_upload_connectors(db, tmp_path):
    folder = Connector.objects.create(name="F", kind="folder", config={"path": str(tmp_path)})
    with pytest.raises(UploadError):
        files_upload(connector=folder, files=[SimpleUploadedFile("a.md", b"# A\n")])
    assert list(tmp_path.iterdir()) == []


def test_file_delete_removes_the_file_and_queues_a_sync(connector, django_capture_on_commit_callbacks):
    upload(connector, SimpleUploadedFile("note.md", b"# One\n"), capture=django_capture_on_commit_callbacks)
    SyncRun.objects.update(status=SyncRun.Status.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = file_delete(connector=connector, name="note.md")
    assert stored(connector) == [] and run.status == SyncRun.Status.QUEUED and len(callbacks) == 1
    for name in ("note.md", "../board/x.md", ".hidden", ""):
        with pytest.raises(UploadError):
            file_delete(connector=connector, name=name)


def test_a_sync_indexes_uploaded_files_and_forgets_deleted_ones(connector, django_capture_on_commit_callbacks):
    result, _ = upload(connector, sample("employee-handbook.md"), sample("release-notes.txt"),
                       capture=django_capture_on_commit_callbacks)
    sync_run_execute(result.run.id)
    assert set(Document.objects.values_list("external_id", flat=True)) == {"employee-handbook.md", "release-notes.txt"}
    SyncRun.objects.filter(status__in=SyncRun.ACTIVE).update(status=SyncRun.Status.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=False):
        run = file_delete(connector=connector, name="release-notes.txt")
    sync_run_execute(run.id)
    assert set(Document.objects.values_list("external_id", flat=True)) == {"employee-handbook.md"}


# --- through the pages ---------------------------------------------------------------------------


def test_staff_uploads_from_the_page_and_sees_each_refusal(client, staff, connector,
                                                           django_capture_on_commit_callbacks):
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("connectors:upload", args=[connector.id]),
            {"files": [sample("employee-handbook.md"), SimpleUploadedFile("tool.exe", b"MZ")]},
            follow=True,
        )
    assert response.redirect_chain[-1][0] == reverse("connectors:detail", args=[connector.id]) + "#upload"
    html = response.content.decode()
    assert "Uploaded 1 file: employee-handbook.md. A sync is queued." in html
    assert "Refused tool.exe: .exe files are not accepted" in html
    assert "employee-handbook.md" in html and "flash-refusal" in html
    assert stored(connector) == ["employee-handbook.md"]


def test_staff_deletes_an_uploaded_file_from_the_page(client, staff, connector, django_capture_on_commit_callbacks):
    client.force_login(staff)
    upload(connector, SimpleUploadedFile("note.md", b"# One\n"), capture=django_capture_on_commit_callbacks)
    SyncRun.objects.update(status=SyncRun.Status.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("connectors:file_delete", args=[connector.id]), {"name": "note.md"})
    assert response.status_code == 302 and stored(connector) == []


def test_it_rejects_outsider_uploads(client, outsider, connector):
    client.force_login(outsider)
    response = client.post(reverse("connectors:upload", args=[connector.id]), {"files": [sample("employee-handbook.md")]})
    assert response.status_code == 404
    assert not upload_dir_for(connector).exists() or stored(connector) == []


def test_a_folder_connector_takes_no_uploads(client, staff, db, tmp_path):
    client.force_login(staff)
    folder = Connector.objects.create(name="F", kind="folder", config={"path": str(tmp_path)})
    response = client.post(reverse("connectors:upload", args=[folder.id]), {"files": [sample("employee-handbook.md")]})
    assert response.status_code == 404 and list(tmp_path.iterdir()) == []


def test_deleting_an_upload_connector_removes_its_folder(client, staff, connector, django_capture_on_commit_callbacks):
    client.force_login(staff)
    upload(connector, SimpleUploadedFile("note.md", b"# One\n"), capture=django_capture_on_commit_callbacks)
    directory = upload_dir_for(connector)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("connectors:action", args=[connector.id, "delete"]))
    assert not Connector.objects.exists() and not directory.exists()
