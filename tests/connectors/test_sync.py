"""The sync engine over a real folder, real parsers, the real embedder and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.postgres.search import SearchQuery

from connectors import indexing
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import connector_sync_start
from connectors.locks import lock_key, redis_client
from connectors.sync import SyncBusy, sync_run_execute

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "leave.md").write_text("# Leave policy\n\nEmployees receive 27 days of paid annual leave per year.\n")
    (root / "vpn.txt").write_text("Connect to the VPN with the Northwind client before opening the wiki.\n")
    (root / "menu.html").write_text("<html><title>Canteen</title><body><p>Soup is served at noon.</p></body></html>")
    return root


@pytest.fixture
def connector(db, folder) -> Connector:
    return Connector.objects.create(name="Docs", kind="folder", config={"path": str(folder)}, is_public=True)


def sync(connector: Connector) -> SyncRun:
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    return run


class CountingEmbedder:
    def __init__(self, inner):
        self.inner = inner
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.fixture
def counting_embedder(monkeypatch):
    counter = CountingEmbedder(indexing.get_embedder())
    monkeypatch.setattr("connectors.sync.get_embedder", lambda: counter)
    return counter


def test_first_sync_indexes_every_supported_file(connector):
    run = sync(connector)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.seen, run.added, run.updated, run.unchanged, run.deleted, run.failed) == (3, 3, 0, 0, 0, 0)
    titles = set(Document.objects.filter(connector=connector).values_list("title", flat=True))
    assert titles == {"Leave policy", "vpn.txt", "Canteen"} or "Leave policy" in titles
    chunk = Chunk.objects.get(document__external_id="leave.md")
    assert len(chunk.embedding) == 384
    assert chunk.document.text[chunk.start_char : chunk.end_char] == chunk.text
    # the full-text side is filled too
    assert Chunk.objects.filter(search_vector=SearchQuery("annual leave")).count() == 1
    connector.refresh_from_db()
    assert connector.last_success_at is not None and connector.status == Connector.Status.IDLE


def test_unchanged_files_are_not_reembedded(connector, counting_embedder):
    sync(connector)
    first = counting_embedder.texts
    assert first >= 3
    run = sync(connector)
    assert (run.unchanged, run.added, run.updated) == (3, 0, 0)
    assert counting_embedder.texts == first


def test_changed_file_is_reindexed(connector, folder, counting_embedder):
    sync(connector)
    before = counting_embedder.texts
    (folder / "leave.md").write_text("# Leave policy\n\nEmployees receive 30 days of paid annual leave per year.\n")
    run = sync(connector)
    assert (run.updated, run.unchanged) == (1, 2)
    assert counting_embedder.texts == before + 1
    assert "30 days" in Document.objects.get(external_id="leave.md").text
    assert not Chunk.objects.filter(text__contains="27 days").exists()


def test_deleted_file_leaves_the_index(connector, folder):
    sync(connector)
    (folder / "vpn.txt").unlink()
    run = sync(connector)
    assert run.deleted == 1
    assert not Document.objects.filter(external_id="vpn.txt").exists()
    assert not Chunk.objects.filter(text__contains="VPN").exists()


def test_a_broken_pdf_is_recorded_and_the_sync_carries_on(connector, folder):
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF")
    run = sync(connector)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.added, run.failed) == (3, 1)
    failure = run.failures.get()
    assert failure.external_id == "broken.pdf"
    assert failure.reason  # a human-readable reason
    assert not Document.objects.filter(external_id="broken.pdf").exists()


def test_a_missing_folder_fails_the_run_with_a_clear_reason_and_deletes_nothing(connector, folder):
    sync(connector)
    shutil.rmtree(folder)
    run = sync(connector)
    assert run.status == SyncRun.Status.FAILED
    assert str(folder) in run.error
    assert Document.objects.filter(connector=connector).count() == 3
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR and connector.last_error


def test_deleting_most_documents_at_once_is_refused(connector, folder, settings):
    settings.SYNC_MAX_DELETE_SHARE = 0.5
    sync(connector)
    (folder / "vpn.txt").unlink()
    (folder / "menu.html").unlink()
    run = sync(connector)
    assert run.deleted == 0
    assert "Deletions skipped" in run.notes
    assert Document.objects.filter(connector=connector).count() == 3


def test_the_demo_handbook_is_indexed_without_failures(db):
    connector = Connector.objects.create(name="Handbook", kind="folder", config={"path": str(SAMPLES)}, is_public=True)
    run = sync(connector)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.failed == 0, list(run.failures.values_list("external_id", "reason"))
    assert run.added >= 6
    media = set(Document.objects.filter(connector=connector).values_list("media_type", flat=True))
    assert {"application/pdf", "text/csv", "text/html"} <= media


def test_a_second_sync_of_the_same_connector_waits_for_the_lock(connector):
    run = SyncRun.objects.create(connector=connector)
    lock = redis_client().lock(lock_key(connector.id), timeout=30)
    assert lock.acquire(blocking=False)
    try:
        with pytest.raises(SyncBusy):
            sync_run_execute(run.id)
    finally:
        lock.release()
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED  # untouched; the task retries later


def test_starting_a_sync_twice_queues_one_run(connector, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = connector_sync_start(connector=connector)
        second = connector_sync_start(connector=connector)
    assert first.id == second.id
    assert len(callbacks) == 1


def test_a_finished_run_is_not_executed_again(connector, counting_embedder):
    run = sync(connector)
    embedded = counting_embedder.texts
    sync_run_execute(run.id)  # a redelivered task message
    run.refresh_from_db()
    assert run.added == 3 and counting_embedder.texts == embedded


def test_acl_change_applies_without_reembedding(connector, engineering, counting_embedder):
    sync(connector)
    embedded = counting_embedder.texts
    connector.is_public = False
    connector.save()
    connector.groups.add(engineering)
    from connectors.services import connector_acl_apply

    connector_acl_apply(connector=connector)
    assert set(Chunk.objects.values_list("acl_public", flat=True)) == {False}
    assert all(groups == ["engineering"] for groups in Chunk.objects.values_list("acl_groups", flat=True))
    assert counting_embedder.texts == embedded
