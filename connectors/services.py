"""Writes on connectors and their index. Views and tasks call these, nothing else."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connectors.models import Chunk, Connector, Document, SyncRun

logger = logging.getLogger(__name__)


@transaction.atomic
def connector_sync_start(*, connector: Connector, trigger: str = SyncRun.Trigger.MANUAL) -> SyncRun:
    """Queue a sync of the connector, or return the one already queued or running."""
    from connectors.tasks import sync_connector

    active = SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE).first()
    if active:
        return active
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(connector=connector, trigger=trigger)
    except IntegrityError:  # another request queued one at the same instant
        return SyncRun.objects.get(connector=connector, status__in=SyncRun.ACTIVE)
    run_id = run.id
    transaction.on_commit(lambda: sync_connector.delay(str(run_id)))
    return run


@transaction.atomic
def sync_run_cancel(*, run: SyncRun) -> SyncRun:
    """Ask a queued or running sync to stop; the worker stops at its next checkpoint."""
    updated = SyncRun.objects.filter(id=run.id, status__in=SyncRun.ACTIVE).update(
        status=SyncRun.Status.CANCELLED, finished_at=timezone.now()
    )
    if updated:
        Connector.objects.filter(id=run.connector_id).update(status=Connector.Status.IDLE)
    run.refresh_from_db()
    return run


@transaction.atomic
def connector_acl_apply(*, connector: Connector) -> int:
    """Copy the connector's ACL onto the documents and chunks that inherit it.

    Takes effect on the next query; nothing is re-embedded.
    """
    groups = connector.acl_group_names()
    stale = Document.objects.filter(connector=connector, acl_from_source=False).filter(
        ~Q(acl_public=connector.is_public) | ~Q(acl_groups=groups)
    )
    ids = list(stale.values_list("id", flat=True))
    if not ids:
        return 0
    Document.objects.filter(id__in=ids).update(acl_public=connector.is_public, acl_groups=groups)
    Chunk.objects.filter(document_id__in=ids).update(acl_public=connector.is_public, acl_groups=groups)
    return len(ids)


def connectors_due_sync_start() -> list[SyncRun]:
    """Queue a scheduled sync for every active connector whose interval has passed."""
    now = timezone.now()
    started = []
    candidates = Connector.objects.filter(is_paused=False, sync_interval__isnull=False).exclude(
        runs__status__in=SyncRun.ACTIVE
    )
    for connector in candidates:
        if connector.last_sync_at is None or connector.last_sync_at + connector.sync_interval <= now:
            started.append(connector_sync_start(connector=connector, trigger=SyncRun.Trigger.SCHEDULE))
    return started


def sync_runs_stale_fail(*, lock_exists) -> int:
    """Fail runs whose worker died (heartbeat old and lock gone), so the next run can start.

    `lock_exists(connector_id)` tells whether a worker still holds the connector's lock.
    """
    from django.conf import settings

    cutoff = timezone.now() - timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS)
    failed = 0
    for run in SyncRun.objects.filter(status=SyncRun.Status.RUNNING, heartbeat_at__lt=cutoff):
        if lock_exists(run.connector_id):
            continue
        with transaction.atomic():
            updated = SyncRun.objects.filter(id=run.id, status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED,
                finished_at=timezone.now(),
                error="The worker stopped during this sync; the next sync resumes where it left off.",
            )
            if updated:
                Connector.objects.filter(id=run.connector_id).update(status=Connector.Status.IDLE)
                failed += 1
    return failed
