"""Celery tasks: thin wrappers that take IDs and call the sync engine."""

from __future__ import annotations

from celery import shared_task

from connectors.models import SyncRun
from connectors.services import connectors_due_sync_start, sync_runs_stale_fail
from connectors.sync import SyncBusy, TransientSyncError, lock_key, redis_client, sync_run_execute


@shared_task(bind=True, acks_late=True, max_retries=6)
def sync_connector(self, run_id: str) -> None:
    try:
        sync_run_execute(run_id)
    except SyncBusy as exc:
        raise self.retry(exc=exc, countdown=15) from exc
    except TransientSyncError as exc:
        if self.request.retries >= self.max_retries:
            SyncRun.objects.filter(id=run_id, status__in=SyncRun.ACTIVE).update(
                status=SyncRun.Status.FAILED, error=f"Gave up after {self.max_retries} retries: {exc}"
            )
            return
        raise self.retry(exc=exc, countdown=min(600, 10 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def check_due_syncs() -> int:
    """Fired by beat every minute: recover dead runs, then queue what is due."""
    sync_runs_stale_fail(lock_exists=lambda connector_id: bool(redis_client().exists(lock_key(connector_id))))
    return len(connectors_due_sync_start())
