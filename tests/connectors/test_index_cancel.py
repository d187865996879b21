"""Cancel reaches a running index task: with a real Celery worker (one process, as on a small
install), a cancel during the embedding of a long document frees the worker within seconds,
and the next connector's sync runs instead of waiting behind it."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import sync_run_cancel
from connectors.upload_storage import upload_dir_for
from connectors.uploads import files_upload
from tests.conftest import spawn_celery_worker, stop_process, wait_for_run


@pytest.fixture
def worker(transactional_db, purge_queues, settings, tmp_path):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    process = spawn_celery_worker(UPLOAD_ROOT=str(settings.UPLOAD_ROOT))
    yield process
    stop_process(process)


def upload_connector(name: str) -> Connector:
    connector = Connector(name=name, kind="upload", is_public=True)
    connector.config = {"path": str(upload_dir_for(connector))}
    connector.save()
    return connector


def long_document(chunks: int) -> bytes:
    """Prose of about `chunks` chunks of the default size (minutes of embedding on a CPU)."""
    sentences = (
        f"Clause {i} of the archive says that item {i % 97} is kept in room {i % 13}." for i in range(chunks * 12)
    )
    return ("# Archive\n\n" + " ".join(sentences)).encode()


def test_cancel_stops_a_running_index_task_and_the_worker_runs_the_next_sync(worker):
    # A first small sync loads the embedding model in the worker, so the cancel below lands
    # while the long document is being embedded, batch after batch.
    welcome = upload_connector("Welcome")
    warm = files_upload(connector=welcome, files=[SimpleUploadedFile("hello.md", b"# Hello\n\nWelcome aboard.\n")])
    assert wait_for_run(warm.run.id, timeout=120).status == SyncRun.Status.SUCCEEDED

    archive = upload_connector("Archive")
    first = files_upload(connector=archive, files=[SimpleUploadedFile("archive.md", long_document(4000))]).run

    deadline = time.monotonic() + 120
    while not SyncRun.objects.get(id=first.id).fetch_done:  # read and stored: its index task is next
        assert time.monotonic() < deadline, "the fetch stage did not finish"
        time.sleep(0.25)
    time.sleep(8)  # the index task has cut the text and is embedding (thousands of chunks: minutes)
    sync_run_cancel(run=SyncRun.objects.get(id=first.id))
    cancelled_at = time.monotonic()

    handbook = upload_connector("Handbook")
    second = files_upload(
        connector=handbook, files=[SimpleUploadedFile("leave.md", b"# Leave\n\nEmployees get 27 days of leave.\n")]
    ).run
    finished = wait_for_run(second.id, timeout=90)

    assert finished.status == SyncRun.Status.SUCCEEDED
    # One embedding batch of the cancelled task, then the other sync: seconds, not minutes.
    assert time.monotonic() - cancelled_at < 45
    assert Document.objects.get(connector=handbook).index_status == Document.IndexStatus.INDEXED
    cancelled = Document.objects.get(connector=archive)
    assert cancelled.index_status == Document.IndexStatus.PENDING  # the next run of Archive picks it up
    assert not Chunk.objects.filter(document=cancelled).exists()
    assert SyncRun.objects.get(id=first.id).status == SyncRun.Status.CANCELLED
