"""A worker killed with SIGKILL in the middle of a sync: nothing is duplicated or lost, the
run is resumed (or, killed while reading the source, failed), and the next run completes the work."""

from __future__ import annotations

import os
import signal
import time

import pytest

from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import connector_sync_start
from connectors.tasks import check_due_syncs
from tests.conftest import spawn_celery_worker, stop_process, wait_for_run

pytestmark = pytest.mark.e2e
FILES = 300
LOCK_SECONDS = 5
STALL_SECONDS = 10


def test_a_worker_killed_mid_sync_leaves_no_duplicates_and_the_next_run_completes(
    tmp_path, transactional_db, purge_queues, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_LOCK_SECONDS = LOCK_SECONDS
    settings.SYNC_INDEX_STALL_SECONDS = STALL_SECONDS
    folder = tmp_path / "wiki"
    folder.mkdir()
    for i in range(FILES):
        (folder / f"page-{i:03}.md").write_text(f"# Page {i}\n\nRoom {i} is booked by team {i % 17} on Mondays.\n")
    connector = Connector.objects.create(name="Wiki", kind="folder", config={"path": str(folder)}, is_public=True)

    worker = spawn_celery_worker(SYNC_LOCK_SECONDS=str(LOCK_SECONDS))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = connector_sync_start(connector=connector)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            first.refresh_from_db()
            if first.indexed > 0:
                break
            time.sleep(0.05)
        assert first.status == SyncRun.Status.RUNNING and 0 < first.indexed < FILES, "kill must land mid-sync"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        stop_process(worker)

    indexed_before = Document.objects.filter(index_status="indexed").count()
    assert indexed_before < FILES
    time.sleep(LOCK_SECONDS + 1)  # the dead run's heartbeat goes stale and its lock expires

    worker = spawn_celery_worker(SYNC_LOCK_SECONDS=str(LOCK_SECONDS))
    try:
        # The new worker drains the dead run's queued batches; the batch the killed worker held
        # waits for the broker's visibility timeout (an hour), so beat's check queues its
        # documents again once the index stage stalls. A kill that landed while the source was
        # still being read leaves a dead fetch instead, which the check fails.
        deadline = time.monotonic() + 120
        while SyncRun.objects.filter(id=first.id, status=SyncRun.Status.RUNNING).exists():
            assert time.monotonic() < deadline, "the dead run was neither resumed nor failed"
            check_due_syncs()
            time.sleep(0.5)
        with django_capture_on_commit_callbacks(execute=True):
            second = connector_sync_start(connector=connector)
        second = wait_for_run(second.id, timeout=180)
    finally:
        stop_process(worker)

    first.refresh_from_db()
    # Killed while indexing: the run is resumed and completes. Killed while reading the source:
    # the run is failed as dead and the next one completes the work.
    assert (first.status == SyncRun.Status.FAILED and "worker stopped" in first.error and not first.fetch_done) or (
        first.status == SyncRun.Status.SUCCEEDED and first.indexed + first.failed >= first.to_index
    ), (first.status, first.error, first.fetch_done)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error
    assert Document.objects.filter(connector=connector).count() == FILES
    assert Document.objects.filter(connector=connector, index_status="indexed").count() == FILES
    assert Chunk.objects.filter(connector=connector).count() == FILES  # one chunk per page, none twice
    sample = Chunk.objects.get(document__external_id="page-123.md")
    assert "Room 123 is booked by team 4" in sample.text
