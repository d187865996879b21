"""The beat's check on runs whose work went missing: a lost index task never leaves a sync
"running" for ever, and a dead fetch is still failed so the next sync can start."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.sync import index_documents_execute, sync_run_execute
from connectors.tasks import check_due_syncs

STALL = 300


@pytest.fixture
def connector(db, folder, settings):
    settings.SYNC_INDEX_STALL_SECONDS = STALL
    settings.EMBEDDING_BATCH_SIZE = 2  # three index tasks for six notes
    return Connector.objects.create(name="Notes", kind="folder", config={"path": str(folder)}, is_public=True)


def read_source(connector) -> SyncRun:
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.fetch_done and run.status == SyncRun.Status.RUNNING
    return run


def age(run, seconds: int) -> None:
    SyncRun.objects.filter(id=run.id).update(heartbeat_at=timezone.now() - dt.timedelta(seconds=seconds))


def test_a_lost_index_task_is_queued_again_and_the_run_succeeds(connector, queued_tasks):
    run = read_source(connector)
    first, *lost = list(queued_tasks)
    queued_tasks.clear()
    index_documents_execute(*first)  # the rest went missing with the broker
    pending = Document.objects.filter(index_status="pending").count()
    assert pending > 0

    age(run, STALL + 5)
    check_due_syncs()
    assert sum(len(ids) for _, ids in queued_tasks) == pending  # only what is still pending
    for task in list(queued_tasks):
        index_documents_execute(*task)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED and run.indexed == 6 and run.failed == 0
    assert Chunk.objects.count() == 6
    # The lost tasks turning up late (a visibility timeout) store nothing twice.
    for task in lost:
        assert index_documents_execute(*task) == 0
    assert Chunk.objects.count() == 6


def test_a_run_still_making_progress_is_left_alone(connector, queued_tasks):
    run = read_source(connector)
    queued_tasks.clear()
    age(run, STALL - 60)  # slower than the fetch lock's lifetime, not yet stalled
    check_due_syncs()
    run.refresh_from_db()
    assert run.status == SyncRun.Status.RUNNING and not queued_tasks


def test_one_stall_is_queued_once_even_when_checked_twice(connector, queued_tasks):
    run = read_source(connector)
    queued_tasks.clear()
    age(run, STALL + 5)
    check_due_syncs()
    check_due_syncs()
    assert sum(len(ids) for _, ids in queued_tasks) == 6


def test_a_run_whose_ending_was_lost_is_ended(connector, queued_tasks):
    run = read_source(connector)
    for task in list(queued_tasks):
        index_documents_execute(*task)
    SyncRun.objects.filter(id=run.id).update(status=SyncRun.Status.RUNNING, finished_at=None)  # the end never landed
    age(run, STALL + 5)
    check_due_syncs()
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED


def test_a_fetch_whose_worker_died_is_still_failed(connector, settings, queued_tasks):
    dead = SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING, fetch_done=False)
    age(dead, settings.SYNC_LOCK_SECONDS + 5)
    check_due_syncs()
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.FAILED and "worker stopped" in dead.error
