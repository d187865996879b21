"""The sync engine: read a source, index what changed, remove what is gone.

Runs inside a Celery worker. Every document is written in its own transaction
(document row and all its chunks together), keyed by (connector, external_id)
and guarded by a content hash, so a run that is killed and started again
produces no duplicates and skips what was already indexed.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.indexing import PreparedDocument, content_hash, get_embedder, prepare
from connectors.models import Chunk, Connector, Document, SyncFailure, SyncRun
from connectors.parsing import ParseError
from connectors.sources.base import ItemFailure, SourceDocument, SourceError
from connectors.sources.registry import build_source

logger = logging.getLogger(__name__)


class SyncBusy(Exception):
    """Another worker holds this connector's sync lock; try again later."""


class TransientSyncError(Exception):
    """The source failed in a way that may pass (network); the task retries with backoff."""


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def lock_key(connector_id) -> str:
    return f"assistant:sync-lock:{connector_id}"


def sync_run_execute(run_id) -> None:
    """Execute one SyncRun; a no-op when the run already ended (idempotent)."""
    run = SyncRun.objects.select_related("connector").filter(id=run_id).first()
    if run is None or run.status not in SyncRun.ACTIVE:
        return
    lock = redis_client().lock(lock_key(run.connector_id), timeout=settings.SYNC_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        raise SyncBusy(f"connector {run.connector_id} is being synced by another worker")
    try:
        _SyncJob(run, lock).execute()
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass


class _SyncJob:
    CANCEL_CHECK_SECONDS = 2.0

    def __init__(self, run: SyncRun, lock):
        self.run = run
        self.connector: Connector = run.connector
        self.lock = lock
        self.pending: list[PreparedDocument] = []
        self.pending_chunks = 0
        self._last_check = 0.0
        self.cancelled = False

    # --- life cycle -----------------------------------------------------------------
    def execute(self) -> None:
        run, connector = self.run, self.connector
        now = timezone.now()
        run.status = SyncRun.Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.save(update_fields=["status", "started_at", "heartbeat_at"])
        Connector.objects.filter(id=connector.id).update(status=Connector.Status.SYNCING, last_sync_at=now)
        try:
            source = build_source(connector.kind, connector.config)
            self._index(source)
            if not self.cancelled:
                self._delete_missing(source)
                self._apply_connector_acl()
        except SourceError as exc:
            if not exc.permanent:
                self._requeue(str(exc))
                raise TransientSyncError(str(exc)) from exc
            self._finish(SyncRun.Status.FAILED, error=str(exc))
            return
        except Exception as exc:  # an engine bug must not leave the run "running" forever
            logger.exception("sync run %s crashed", run.id)
            self._finish(SyncRun.Status.FAILED, error=f"Internal error: {exc.__class__.__name__}: {exc}")
            raise
        self._finish(SyncRun.Status.CANCELLED if self.cancelled else SyncRun.Status.SUCCEEDED)

    def _requeue(self, message: str) -> None:
        self.run.status = SyncRun.Status.QUEUED
        self.run.notes = f"Retrying after a source error: {message}"
        self.run.save(update_fields=["status", "notes"])
        Connector.objects.filter(id=self.connector.id).update(status=Connector.Status.IDLE)

    def _finish(self, status: str, *, error: str = "") -> None:
        run = self.run
        run.status = status
        run.error = error
        run.finished_at = timezone.now()
        run.save()
        connector_update = {"status": Connector.Status.ERROR if error else Connector.Status.IDLE, "last_error": error}
        if status == SyncRun.Status.SUCCEEDED:
            connector_update["last_success_at"] = run.finished_at
        Connector.objects.filter(id=self.connector.id).update(**connector_update)

    def _heartbeat(self, *, force: bool = False) -> None:
        """Keep the lock alive, publish progress, and notice a cancel request."""
        now = time.monotonic()
        if not force and now - self._last_check < self.CANCEL_CHECK_SECONDS:
            return
        self._last_check = now
        self.lock.reacquire()
        self.run.heartbeat_at = timezone.now()
        self.run.save(
            update_fields=["seen", "added", "updated", "unchanged", "deleted", "failed", "total", "heartbeat_at"]
        )
        status = SyncRun.objects.filter(id=self.run.id).values_list("status", flat=True).first()
        if status == SyncRun.Status.CANCELLED:
            self.cancelled = True

    # --- indexing ---------------------------------------------------------------------
    def _index(self, source) -> None:
        known = dict(Document.objects.filter(connector=self.connector).values_list("external_id", "content_hash"))
        self.run.total = getattr(source, "estimated_total", lambda: None)()
        for item in source.iter_documents():
            self._heartbeat()
            if self.cancelled:
                return
            if isinstance(item, ItemFailure):
                self._fail(item.external_id, item.reason)
                continue
            self.run.seen += 1
            if item.content and len(item.content) > settings.MAX_DOCUMENT_BYTES:
                self._fail(item.external_id, f"File is larger than the limit of {settings.MAX_DOCUMENT_BYTES} bytes.")
                continue
            digest = content_hash(item)
            if known.get(item.external_id) == digest:
                self.run.unchanged += 1
                continue
            try:
                prepared = prepare(item, digest)
            except ParseError as exc:
                self._fail(item.external_id, str(exc))
                continue
            if not prepared.text.strip():
                self._fail(item.external_id, "No text could be extracted (empty, or a scanned image without text).")
                continue
            self.pending.append(prepared)
            self.pending_chunks += len(prepared.spans)
            if self.pending_chunks >= settings.EMBEDDING_BATCH_SIZE:
                self._flush(known)
        self._flush(known)
        self._heartbeat(force=True)

    def _flush(self, known: dict[str, str]) -> None:
        """Embed the pending documents' chunks in one batch, then store each document."""
        if not self.pending:
            return
        texts = [span.text for doc in self.pending for span in doc.spans]
        vectors = iter(get_embedder().embed(texts))
        for doc in self.pending:
            doc_vectors = [next(vectors) for _ in doc.spans]
            created = self._store(doc, doc_vectors)
            if created:
                self.run.added += 1
            else:
                self.run.updated += 1
            known[doc.item.external_id] = doc.hash
        self.pending = []
        self.pending_chunks = 0
        self._heartbeat(force=True)

    def _acl_for(self, item: SourceDocument) -> tuple[bool, list[str], bool]:
        if item.acl_groups is not None or item.acl_public is not None:
            return bool(item.acl_public), sorted(set(item.acl_groups or ())), True
        return self.connector.is_public, self.connector.acl_group_names(), False

    @transaction.atomic
    def _store(self, doc: PreparedDocument, vectors: list[list[float]]) -> bool:
        item = doc.item
        acl_public, acl_groups, acl_from_source = self._acl_for(item)
        document, created = Document.objects.update_or_create(
            connector=self.connector,
            external_id=item.external_id,
            defaults={
                "title": doc.title,
                "location": item.location,
                "url": item.url,
                "media_type": item.media_type,
                "text": doc.text,
                "content_hash": doc.hash,
                "metadata": item.metadata,
                "acl_public": acl_public,
                "acl_groups": acl_groups,
                "acl_from_source": acl_from_source,
                "source_modified_at": item.modified_at,
            },
        )
        if not created:
            document.chunks.all().delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=document,
                connector=self.connector,
                ordinal=ordinal,
                text=span.text,
                start_char=span.start,
                end_char=span.end,
                token_count=span.token_count,
                embedding=vector,
                acl_public=acl_public,
                acl_groups=acl_groups,
            )
            for ordinal, (span, vector) in enumerate(zip(doc.spans, vectors, strict=True))
        )
        Chunk.objects.filter(document=document).update(
            search_vector=SearchVector(F("text"), config=document.language)
        )
        return created

    def _fail(self, external_id: str, reason: str) -> None:
        self.run.failed += 1
        SyncFailure.objects.create(run=self.run, external_id=external_id[:1024], reason=reason[:4000])

    # --- deletions and ACL -------------------------------------------------------------------
    def _delete_missing(self, source) -> None:
        try:
            present = source.list_ids()
        except SourceError as exc:
            self._note(f"Deletions skipped: the source's listing failed ({exc}).")
            return
        indexed = Document.objects.filter(connector=self.connector)
        total = indexed.count()
        gone = list(indexed.exclude(external_id__in=present).values_list("id", flat=True)) if present else list(
            indexed.values_list("id", flat=True)
        )
        if not gone:
            return
        share = len(gone) / total
        if share > settings.SYNC_MAX_DELETE_SHARE:
            self._note(
                f"Deletions skipped: {len(gone)} of {total} documents ({share:.0%}) are missing from the source, "
                f"more than the allowed {settings.SYNC_MAX_DELETE_SHARE:.0%}. If that is intended, raise "
                "SYNC_MAX_DELETE_SHARE or delete the documents by hand."
            )
            return
        for start in range(0, len(gone), 500):
            Document.objects.filter(id__in=gone[start : start + 500]).delete()
        self.run.deleted += len(gone)

    def _apply_connector_acl(self) -> None:
        """Bring inherited ACLs in line with the connector's, in place (no re-embedding)."""
        from connectors.services import connector_acl_apply

        connector_acl_apply(connector=self.connector)

    def _note(self, message: str) -> None:
        self.run.notes = (self.run.notes + "\n" + message).strip()
        self.run.save(update_fields=["notes"])
