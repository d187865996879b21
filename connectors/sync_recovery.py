"""Runs whose work went missing: a fetch whose worker died fails, an index stage that stalled resumes.

The database, not the broker, says what is left to do: a document waiting to be indexed is
`pending` with its run. A queued index task can be lost with the broker (Redis killed between
handing the task to a worker and recording it as unacknowledged) or wait an hour for the
visibility timeout when its worker was killed. The beat's check (connectors.tasks.check_due_syncs)
queues such a run's pending documents again instead of failing it. That is safe: a task indexes
only documents still pending, so a copy that arrives late stores nothing twice.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models.functions import Length
from django.utils import timezone

from connectors.models import Document, SyncRun
from connectors.queue import INDEX_DOCUMENTS, enqueue
from connectors.services import sync_runs_stale_fail
from connectors.sync import index_batch_full, sync_followup_start, sync_run_finish_if_done

logger = logging.getLogger(__name__)


def sync_runs_recover() -> dict:
    """Fail fetches whose worker died, resume index stages that stalled; returns what was done."""
    return {"failed": sync_runs_stale_fail(index_stage=False), "resumed": sync_runs_stalled_resume()}


def sync_runs_stalled_resume() -> int:
    """Queue again the pending documents of runs whose index stage made no progress for a while.

    A run is claimed by moving its heartbeat forward in the same statement that checks it is still
    stale, so two checks running at once queue its documents once, and a backlog that is merely
    slow is queued again at most once per SYNC_INDEX_STALL_SECONDS (the copies then find nothing
    pending and return at once).
    """
    now = timezone.now()
    cutoff = now - timezone.timedelta(seconds=settings.SYNC_INDEX_STALL_SECONDS)
    stalled = SyncRun.objects.filter(status=SyncRun.Status.RUNNING, fetch_done=True, heartbeat_at__lt=cutoff)
    resumed = 0
    for run_id in list(stalled.values_list("id", flat=True)):
        claimed = SyncRun.objects.filter(
            id=run_id, status=SyncRun.Status.RUNNING, heartbeat_at__lt=cutoff
        ).update(heartbeat_at=now)
        if not claimed:
            continue
        queued = _pending_queue_again(run_id)
        if queued:
            resumed += 1
            logger.warning("Sync run %s made no progress for %ss: %s pending documents queued again",
                           run_id, settings.SYNC_INDEX_STALL_SECONDS, queued)
        else:  # every document is done: only the run's ending was lost
            sync_run_finish_if_done(run_id)
            sync_followup_start(run_id=run_id)
    return resumed


def _pending_queue_again(run_id) -> int:
    """Queue the run's pending documents in index batches; returns how many were queued."""
    pending = (
        Document.objects.filter(pending_run_id=run_id, index_status=Document.IndexStatus.PENDING)
        .annotate(chars=Length("text"))
        .order_by("id")
        .values_list("id", "chars")
    )
    batch, chars, queued = [], 0, 0
    for document_id, length in pending.iterator():
        batch.append(str(document_id))
        chars += length or 0
        if index_batch_full(len(batch), chars):
            enqueue(INDEX_DOCUMENTS, str(run_id), batch)
            queued += len(batch)
            batch, chars = [], 0
    if batch:
        enqueue(INDEX_DOCUMENTS, str(run_id), batch)
        queued += len(batch)
    return queued
