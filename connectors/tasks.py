"""Celery tasks: thin wrappers that take IDs and call the sync engine."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from connectors.models import SyncRun
from connectors.rebuild import (
    index_versions_check,
    rebuild_batch_execute,
    rebuild_plan_execute,
    retired_version_purge,
)
from connectors.services import connectors_due_sync_start
from connectors.upload_storage import upload_dirs_orphaned_remove
from connectors.sync import (
    SyncBusy,
    TransientSyncError,
    index_documents_execute,
    index_documents_fail,
    sync_run_execute,
)
from connectors.sync_recovery import sync_runs_recover
from inference.embeddings import EmbeddingError


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


@shared_task(bind=True, acks_late=True, max_retries=5)
def index_documents(self, run_id: str, document_ids: list[str]) -> int:
    """Embed and store a batch of pending documents (queue "index")."""
    try:
        return index_documents_execute(run_id, document_ids)
    except (OperationalError, InterfaceError) as exc:
        # The database restarted under the batch: nothing was half-stored (each document's
        # chunks swap in one transaction), so the batch is simply done again a little later.
        raise self.retry(exc=exc, countdown=min(60, 2 * 2**self.request.retries), max_retries=8) from exc
    except EmbeddingError as exc:
        if self.request.retries >= self.max_retries:
            index_documents_fail(run_id, document_ids, str(exc))
            return 0
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def check_due_syncs() -> int:
    """Fired by beat every minute: fail dead fetches, resume stalled index stages, then queue what is due."""
    sync_runs_recover()
    return len(connectors_due_sync_start())


# --- rebuilding the index beside the live one (connectors/rebuild.py) --------------------------


@shared_task(acks_late=True)
def index_rebuild_plan(number: int) -> int:
    """Queue the batches of documents still missing from the building version `number`."""
    return rebuild_plan_execute(number)


@shared_task(bind=True, acks_late=True, max_retries=5)
def index_rebuild_batch(self, number: int, document_ids: list[str]) -> int:
    """Embed a batch of documents into the building version (done twice: nothing duplicated)."""
    try:
        return rebuild_batch_execute(number, document_ids)
    except (OperationalError, InterfaceError, EmbeddingError) as exc:
        # Given up after the retries: the documents stay missing and the beat's check queues
        # them again once the rebuild has stalled (INDEX_REBUILD_STALL_SECONDS).
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def index_version_purge(number: int) -> int:
    """Delete a retired version's chunks, in batches."""
    return retired_version_purge(number)


@shared_task(acks_late=True)
def check_index_versions() -> dict:
    """Fired by beat every minute: purge retired versions after their grace, resume a stalled rebuild."""
    return index_versions_check()


@shared_task(acks_late=True)
def sweep_upload_folders() -> int:
    """Fired by beat hourly: remove upload and library folders whose connector is gone."""
    return len(upload_dirs_orphaned_remove())
