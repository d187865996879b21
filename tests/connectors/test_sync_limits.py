"""A sync and its limits: an over-long file fails alone with the reason, and files uploaded
while a run is reading end up indexed without anyone starting another sync."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from connectors import sync
from connectors.models import Chunk, Connector, Document, SyncFailure, SyncRun
from connectors.sync import sync_run_execute
from connectors.upload_storage import upload_dir_for
from connectors.uploads import files_upload


@pytest.fixture
def connector(db, settings, tmp_path) -> Connector:
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    connector = Connector(name="Board packs", kind="upload", is_public=True)
    connector.config = {"path": str(upload_dir_for(connector))}
    connector.save()
    return connector


def upload(connector, name: str, content: bytes, capture):
    with capture(execute=False):
        return files_upload(connector=connector, files=[SimpleUploadedFile(name, content)])


def test_a_document_over_the_chunk_cap_fails_alone_with_the_reason(connector, settings,
                                                                   django_capture_on_commit_callbacks):
    settings.INDEX_MAX_CHUNKS = 20
    upload(connector, "columns.csv", b"a," * 200_000, django_capture_on_commit_callbacks)
    result = upload(connector, "leave.md", b"# Leave\n\nEmployees receive 27 days of paid leave.\n",
                    django_capture_on_commit_callbacks)
    sync_run_execute(result.run.id)

    run = SyncRun.objects.get(id=result.run.id)
    assert run.status == SyncRun.Status.SUCCEEDED and run.failed == 1
    failure = SyncFailure.objects.get(run=run)
    assert failure.external_id == "columns.csv"
    assert "more than 20 chunks" in failure.reason and "INDEX_MAX_CHUNKS" in failure.reason
    big = Document.objects.get(external_id="columns.csv")
    assert big.index_status == Document.IndexStatus.FAILED and "INDEX_MAX_CHUNKS" in big.index_error
    assert not Chunk.objects.filter(document=big).exists()
    assert Document.objects.get(external_id="leave.md").index_status == Document.IndexStatus.INDEXED


def test_a_file_over_the_character_cap_fails_alone_with_the_reason(connector, settings,
                                                                   django_capture_on_commit_callbacks):
    settings.PARSE_MAX_CHARS = 5_000
    upload(connector, "long.txt", b"word " * 10_000, django_capture_on_commit_callbacks)
    result = upload(connector, "short.txt", b"Short and sweet.", django_capture_on_commit_callbacks)
    sync_run_execute(result.run.id)

    failure = SyncFailure.objects.get(run_id=result.run.id)
    assert failure.external_id == "long.txt" and "more than 5,000 characters" in failure.reason
    assert "PARSE_MAX_CHARS" in failure.reason
    assert list(Document.objects.values_list("external_id", flat=True)) == ["short.txt"]


def test_files_uploaded_during_a_running_sync_are_indexed_by_one_follow_up_run(
    connector, monkeypatch, django_capture_on_commit_callbacks
):
    first = upload(connector, "first.md", b"# First\n\nThe first file.\n", django_capture_on_commit_callbacks)
    real_source = sync.connector_source
    arrived: list[str] = []

    def source_that_sees_uploads_arrive(conn):
        source = real_source(conn)
        real_iter = source.iter_documents

        def iter_documents(**kwargs):
            items = list(real_iter(**kwargs))  # the folder is listed: later files are not in it
            if not arrived:
                arrived.append("now")
                for n in (1, 2, 3):  # three uploads while the run reads: one follow-up between them
                    result = upload(connector, f"late-{n}.md", f"# Late {n}\n\nArrived late.\n".encode(),
                                    django_capture_on_commit_callbacks)
                    assert result.run.id == first.run.id  # the running run, as before
            yield from items

        source.iter_documents = iter_documents
        return source

    monkeypatch.setattr(sync, "connector_source", source_that_sees_uploads_arrive)  # where the engine reads it
    with django_capture_on_commit_callbacks(execute=True):  # the follow-up's task runs (eagerly)
        sync_run_execute(first.run.id)

    runs = list(SyncRun.objects.filter(connector=connector).order_by("created_at"))
    assert [run.status for run in runs] == [SyncRun.Status.SUCCEEDED, SyncRun.Status.SUCCEEDED]
    indexed = Document.objects.filter(index_status=Document.IndexStatus.INDEXED)
    assert sorted(indexed.values_list("external_id", flat=True)) == ["first.md", "late-1.md", "late-2.md", "late-3.md"]
    assert runs[1].added == 3


def test_an_upload_while_a_run_is_only_queued_needs_no_follow_up(connector, django_capture_on_commit_callbacks):
    first = upload(connector, "first.md", b"# First\n\nOne.\n", django_capture_on_commit_callbacks)
    second = upload(connector, "second.md", b"# Second\n\nTwo.\n", django_capture_on_commit_callbacks)
    assert second.run.id == first.run.id
    with django_capture_on_commit_callbacks(execute=True):
        sync_run_execute(first.run.id)
    assert SyncRun.objects.filter(connector=connector).count() == 1
    assert Document.objects.filter(index_status=Document.IndexStatus.INDEXED).count() == 2

