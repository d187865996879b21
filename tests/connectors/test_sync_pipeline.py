"""The two-stage pipeline (fetch queue, index queue), progress, cancel, re-index,
schedules, dead workers and sources that fail mid-run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import (
    connector_reindex,
    connector_sync_start,
    connectors_due_sync_start,
    sync_run_cancel,
)
from connectors.sources.base import ItemUnchanged, Source, SourceConfig, SourceDocument, SourceError
from connectors.sources.registry import SOURCES
from connectors.sync import index_documents_execute, sync_run_execute


@pytest.fixture
def connector(db, folder):
    return Connector.objects.create(name="Notes", kind="folder", config={"path": str(folder)}, is_public=True)


def drain(held) -> None:
    while held:
        index_documents_execute(*held.pop(0))


def run_sync(connector) -> SyncRun:
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    return run


def test_fetch_stores_text_and_the_index_queue_embeds_it(connector, queued_tasks):
    run = run_sync(connector)
    assert run.status == SyncRun.Status.RUNNING and run.fetch_done
    assert run.to_index == 6 and run.indexed == 0
    assert set(Document.objects.values_list("index_status", flat=True)) == {"pending"}
    assert not Chunk.objects.exists()
    assert run.progress_percent == 50  # read, not yet indexed

    for run_id, ids in queued_tasks:
        index_documents_execute(run_id, ids)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.indexed == 6
    assert set(Document.objects.values_list("index_status", flat=True)) == {"indexed"}
    assert Chunk.objects.count() == 6


def test_a_changed_document_keeps_answering_from_old_chunks_until_reindexed(connector, folder, queued_tasks):
    run_sync(connector)
    drain(queued_tasks)
    (folder / "note-1.md").write_text("# Note 1\n\nMeeting room 1 now has 12 chairs.\n")
    run = run_sync(connector)
    assert (run.updated, run.unchanged) == (1, 5)
    assert Chunk.objects.filter(text__contains="3 chairs", document__external_id="note-1.md").exists()
    drain(queued_tasks)
    assert Chunk.objects.filter(text__contains="12 chairs").exists()
    assert not Chunk.objects.filter(text__contains="3 chairs", document__external_id="note-1.md").exists()


def test_a_document_changed_while_its_batch_embedded_is_left_to_the_newer_batch(connector, folder, queued_tasks,
                                                                                 monkeypatch):
    """An index task stores its whole batch in one transaction, but each document only if its
    text is still the one it chunked: the others of the batch are stored all the same."""
    run_sync(connector)
    (run_id, ids), = queued_tasks
    assert len(ids) == 6

    def store_after_an_edit(entries):
        # The fetch stage stores a new text for note-2 while this batch is being embedded.
        Document.objects.filter(external_id="note-2.md").update(content_hash="newer", text="# Note 2\n\nNew.")
        return real_store(entries)

    from connectors import sync as engine

    real_store = engine._store_chunks
    monkeypatch.setattr(engine, "_store_chunks", store_after_an_edit)
    assert index_documents_execute(run_id, ids) == 5
    assert Document.objects.get(external_id="note-2.md").index_status == "pending"
    assert not Chunk.objects.filter(document__external_id="note-2.md").exists()
    assert Chunk.objects.filter(document__index_status="indexed").count() == 5
    assert Chunk.objects.filter(search_vector__isnull=False).count() == 5


def test_a_resync_of_an_unchanged_folder_writes_nothing_and_queues_nothing(connector, folder, queued_tasks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run_sync(connector)
    drain(queued_tasks)
    with CaptureQueriesContext(connection) as queries:
        run = run_sync(connector)
    assert (run.unchanged, run.updated, run.added, run.status) == (6, 0, 0, SyncRun.Status.SUCCEEDED)
    assert queued_tasks == []
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")
              and ("connectors_chunk" in q["sql"] or "connectors_document" in q["sql"])]
    assert writes == []


def test_cancel_stops_the_run_and_the_next_run_finishes_the_work(connector, queued_tasks):
    run = run_sync(connector)
    sync_run_cancel(run=run)
    for run_id, ids in queued_tasks:
        assert index_documents_execute(run_id, ids) == 0  # a cancelled run's batches are skipped
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED
    assert Document.objects.filter(index_status="pending").count() == 6

    queued_tasks.clear()
    nxt = run_sync(connector)
    drain(queued_tasks)
    nxt.refresh_from_db()
    assert nxt.status == SyncRun.Status.SUCCEEDED
    assert set(Document.objects.values_list("index_status", flat=True)) == {"indexed"}
    assert Chunk.objects.count() == 6


def test_documents_left_pending_by_a_dead_run_are_indexed_by_the_next(connector, queued_tasks):
    dead = run_sync(connector)
    SyncRun.objects.filter(id=dead.id).update(status=SyncRun.Status.FAILED, error="worker died")
    queued_tasks.clear()  # the dead run's batches were lost with its worker
    run = run_sync(connector)
    drain(queued_tasks)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.indexed == 6
    assert Document.objects.count() == 6 and Chunk.objects.count() == 6
    assert set(Document.objects.values_list("index_status", flat=True)) == {"indexed"}


def test_reindex_reembeds_every_document_from_stored_text(connector, folder, django_capture_on_commit_callbacks):
    run_sync(connector)
    before = set(Chunk.objects.values_list("id", flat=True))
    for path in folder.iterdir():
        path.unlink()  # re-indexing must not need the source
    with django_capture_on_commit_callbacks(execute=True):
        run = connector_reindex(connector=connector)
    run.refresh_from_db()
    assert run.trigger == SyncRun.Trigger.REINDEX and run.status == SyncRun.Status.SUCCEEDED
    assert run.indexed == 6
    after = set(Chunk.objects.values_list("id", flat=True))
    assert len(after) == 6 and not (before & after)


def test_due_connectors_are_queued_and_paused_ones_are_not(db, folder, django_capture_on_commit_callbacks):
    hourly = dt.timedelta(hours=1)
    due = Connector.objects.create(name="Due", kind="folder", config={"path": str(folder)}, sync_interval=hourly,
                                   last_sync_at=timezone.now() - dt.timedelta(hours=2))
    Connector.objects.create(name="Fresh", kind="folder", config={"path": str(folder)}, sync_interval=hourly,
                             last_sync_at=timezone.now())
    Connector.objects.create(name="Paused", kind="folder", config={"path": str(folder)}, sync_interval=hourly,
                             is_paused=True)
    Connector.objects.create(name="Manual", kind="folder", config={"path": str(folder)})
    with django_capture_on_commit_callbacks(execute=False):
        started = connectors_due_sync_start()
    assert [run.connector.name for run in started] == ["Due"]
    assert started[0].trigger == SyncRun.Trigger.SCHEDULE
    assert due.runs.count() == 1


def test_a_run_whose_worker_died_is_failed_when_a_new_sync_starts(connector, settings, django_capture_on_commit_callbacks):
    stale = SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING,
                                   heartbeat_at=timezone.now() - dt.timedelta(seconds=settings.SYNC_LOCK_SECONDS + 5))
    with django_capture_on_commit_callbacks(execute=False):
        run = connector_sync_start(connector=connector)
    assert run.id != stale.id
    stale.refresh_from_db()
    assert stale.status == SyncRun.Status.FAILED and "worker stopped" in stale.error


def test_a_live_run_is_not_mistaken_for_a_dead_one(connector, django_capture_on_commit_callbacks):
    live = SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING, heartbeat_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=False):
        assert connector_sync_start(connector=connector).id == live.id


class FlakySource(Source):
    """A source that goes down after a few items while it is flaky."""

    kind = "flaky"
    label = "Flaky test source"
    down_after: int | None = 2
    reads = 0

    class Config(SourceConfig):
        items: int = 5

    def check(self) -> str:
        return "ok"

    def list_ids(self) -> set[str]:
        return {f"item-{i}" for i in range(self.config.items)}

    def iter_documents(self, since=None, previous=None):
        for i in range(self.config.items):
            if FlakySource.down_after is not None and i >= FlakySource.down_after:
                raise SourceError("connection reset by the source", permanent=False)
            FlakySource.reads += 1
            eid = f"item-{i}"
            if previous and eid in previous:
                yield ItemUnchanged(eid)
                continue
            yield SourceDocument(external_id=eid, title=f"Item {i}", text=f"Item {i} is stored in bin {i * 7}.")


def test_a_source_that_goes_down_mid_run_is_retried_and_loses_nothing(db, monkeypatch):
    from connectors.sync import TransientSyncError

    monkeypatch.setitem(SOURCES, "flaky", FlakySource)
    FlakySource.down_after = 2
    connector = Connector.objects.create(name="Flaky", kind="flaky", config={"items": 5}, is_public=True)
    run = SyncRun.objects.create(connector=connector)
    with pytest.raises(TransientSyncError):
        sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED and "connection reset" in run.notes
    assert Document.objects.filter(connector=connector).count() == 2  # kept, and nothing deleted

    FlakySource.down_after = None  # the source is back; the task's retry runs the same run
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert Document.objects.filter(connector=connector).count() == 5
    assert Chunk.objects.filter(connector=connector).count() == 5
