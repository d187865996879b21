"""The sync engine: read a source, store what changed, index it, remove what is gone.

Two stages on two Celery queues, so reading a slow source and embedding overlap:

* fetch (queue "sync", one per connector at a time under a Redis lock): reads the
  source, parses changed items and stores each Document with its text, marked
  pending; hands batches of document ids to the index queue; applies deletions.
* index (queue "index", any number of workers): chunks and embeds a batch of
  pending documents in one embedding call, then swaps each document's chunks in
  one transaction. Old chunks keep answering until new ones replace them.

Everything is keyed by (connector, external_id) and guarded by content hashes and
statuses, so a run that is killed and started again produces no duplicates and
redoes only what was not finished: pending documents of a dead run are picked up by
the next one.
"""

from __future__ import annotations

import logging
import time
from itertools import chain

import redis
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from connectors.chunking import ChunkLimitExceeded
from connectors.chunk_store import chunks_replace_many
from connectors.index_version import versions_written
from connectors.indexing import chunks_prepare, content_hash, get_embedder, parse_item, too_many_chunks_reason
from connectors.locks import followup_key, lock_key, redis_client
from connectors.models import Chunk, Connector, Document, SyncFailure, SyncRun
from connectors.parsing import ParseCancelled, ParseError
from connectors.queue import INDEX_DOCUMENTS, enqueue
from connectors.services import connector_acl_apply, connector_acl_source, connector_source, connector_sync_start
from connectors.sources.base import ItemFailure, ItemUnchanged, SourceDocument, SourceError
from connectors.text_language import document_configuration

logger = logging.getLogger(__name__)


class SyncBusy(Exception):
    """Another worker holds this connector's sync lock; try again later."""


class TransientSyncError(Exception):
    """The source failed in a way that may pass (network); the task retries with backoff."""


def index_batch_chars() -> int:
    """Text per index task: about one embedding batch worth of chunks."""
    return settings.EMBEDDING_BATCH_SIZE * settings.CHUNK_TOKENS * 4


def index_batch_full(documents: int, chars: int) -> bool:
    """Whether an index task's batch is complete: about one embedding batch of text, or that many documents."""
    return chars >= index_batch_chars() or documents >= settings.EMBEDDING_BATCH_SIZE


# --- fetch stage ---------------------------------------------------------------------------------


def sync_run_execute(run_id) -> None:
    """Execute the fetch stage of one SyncRun; a no-op when the run already ended (idempotent)."""
    run = SyncRun.objects.select_related("connector").filter(id=run_id).first()
    if run is None or run.status not in SyncRun.ACTIVE or run.fetch_done:
        return
    lock = redis_client().lock(lock_key(run.connector_id), timeout=settings.SYNC_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        raise SyncBusy(f"connector {run.connector_id} is being synced by another worker")
    try:
        _FetchJob(run, lock).execute()
    finally:
        try:
            lock.release()
        except (redis.exceptions.LockError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass  # not ours any more, or Redis is away: the lock expires by itself
    sync_followup_start(run_id=run.id)


# --- a follow-up run for changes made while a run was reading ----------------------------------


def sync_followup_request(*, connector_id) -> None:
    """The source changed while a run was already reading it (a file uploaded): run once more
    when that run ends. A flag, not a counter: one follow-up however many changes."""
    try:
        redis_client().set(followup_key(connector_id), 1, ex=7 * 24 * 3600)
    except redis.exceptions.RedisError:
        logger.warning("connector %s: could not ask for a follow-up sync (Redis unavailable)", connector_id)


def sync_followup_start(*, run_id=None, connector_id=None) -> SyncRun | None:
    """Queue the follow-up run asked for while the connector's run was active, once none is.

    Called whenever a run may have ended (fetch done, a batch indexed or failed). The flag
    is taken atomically, so concurrent callers queue one run between them.
    """
    if connector_id is None:
        connector_id = SyncRun.objects.filter(id=run_id).values_list("connector_id", flat=True).first()
    if connector_id is None or SyncRun.objects.filter(connector_id=connector_id, status__in=SyncRun.ACTIVE).exists():
        return None
    try:
        pipe = redis_client().pipeline(transaction=True)
        pipe.get(followup_key(connector_id))
        pipe.delete(followup_key(connector_id))
        wanted, _ = pipe.execute()
    except redis.exceptions.RedisError:
        return None
    connector = Connector.objects.filter(id=connector_id).first() if wanted else None
    if connector is None:
        return None

    return connector_sync_start(connector=connector)


class _FetchJob:
    HEARTBEAT_SECONDS = 2.0
    COUNTERS = ["seen", "added", "updated", "unchanged", "deleted", "failed", "total", "to_index", "heartbeat_at"]

    def __init__(self, run: SyncRun, lock):
        self.run = run
        self.connector: Connector = run.connector
        self.lock = lock
        self.batch: list = []
        self.batch_chars = 0
        self._last_beat = 0.0
        self._failed_written = 0
        self.cancelled = False

    def execute(self) -> None:

        run, connector = self.run, self.connector
        now = timezone.now()
        run.status = SyncRun.Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.save(update_fields=["status", "started_at", "heartbeat_at"])
        Connector.objects.filter(id=connector.id).update(status=Connector.Status.SYNCING, last_sync_at=now)
        try:
            if run.trigger == SyncRun.Trigger.REINDEX:
                self._queue_everything()
            else:
                source = connector_source(connector)
                self._read(source)
                if not self.cancelled:
                    self._delete_missing(source)
                    self._apply_connector_acl()
                    self._save_checkpoint(source)
            if not self.cancelled:
                self._queue_orphans()
        except SourceError as exc:
            if not exc.permanent:
                self._requeue(str(exc))
                raise TransientSyncError(str(exc)) from exc
            sync_run_finish(run.id, status=SyncRun.Status.FAILED, error=str(exc))
            return
        except (OperationalError, InterfaceError) as exc:
            # Our own database went away (a restart, a failover): nothing can be recorded now.
            # The task retries with backoff and reads the source again (upserts, hashes: no
            # duplicates); if it never comes back, the stale-run check fails the run.
            raise TransientSyncError(f"the database was unavailable: {exc}") from exc
        except Exception as exc:  # an engine bug must not leave the run "running" forever
            logger.exception("sync run %s crashed", run.id)
            sync_run_finish(run.id, status=SyncRun.Status.FAILED, error=f"Internal error: {exc.__class__.__name__}: {exc}")
            raise
        if self.cancelled:
            return  # sync_run_cancel already ended the run
        self._flush()
        run.fetch_done = True
        self._beat(force=True, extra=["fetch_done"])
        sync_run_finish_if_done(run.id)

    # --- bookkeeping ------------------------------------------------------------------------
    def _requeue(self, message: str) -> None:
        self.run.status = SyncRun.Status.QUEUED
        self.run.notes = f"Retrying after a source error: {message}"
        self.run.save(update_fields=["status", "notes"])
        Connector.objects.filter(id=self.connector.id).update(status=Connector.Status.IDLE)

    def _beat(self, *, force: bool = False, extra: list[str] | None = None) -> None:
        """Keep the lock alive, publish progress, and notice a cancel request."""
        now = time.monotonic()
        if not force and now - self._last_beat < self.HEARTBEAT_SECONDS:
            return
        self._last_beat = now
        try:
            self.lock.reacquire()
        except redis.exceptions.LockNotOwnedError:
            # A step outlasted the lock (a huge file): take it back unless another worker has it.
            if not self.lock.acquire(blocking=False):
                raise SyncBusy(f"connector {self.connector.id}: another worker took over this sync") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            # Redis restarting: keep reading; the lock is renewed (or taken back) at a later beat.
            logger.warning("sync run %s: could not renew its lock (%s); retrying at the next beat", self.run.id, exc)
        self.run.heartbeat_at = timezone.now()
        values = {name: getattr(self.run, name) for name in self.COUNTERS + (extra or []) if name != "failed"}
        # Index tasks count their own failures (a document too long to index) on the same row:
        # add this stage's new ones rather than overwrite theirs.
        values["failed"] = F("failed") + (self.run.failed - self._failed_written)
        # Only while still running: a cancelled run keeps its final state.
        updated = SyncRun.objects.filter(id=self.run.id, status=SyncRun.Status.RUNNING).update(**values)
        if updated:
            self._failed_written = self.run.failed
        else:
            self.cancelled = True

    def _cancel_requested(self) -> bool:
        """Asked once a second while a large file is parsed: was the run cancelled meanwhile?"""
        return not SyncRun.objects.filter(id=self.run.id, status=SyncRun.Status.RUNNING).exists()

    def _fail(self, external_id: str, reason: str) -> None:
        self.run.failed += 1
        SyncFailure.objects.create(run=self.run, external_id=external_id[:1024], reason=reason[:4000])

    def _note(self, message: str) -> None:
        self.run.notes = (self.run.notes + "\n" + message).strip()
        SyncRun.objects.filter(id=self.run.id).update(notes=self.run.notes)

    # --- reading ------------------------------------------------------------------------------
    def _read(self, source) -> None:
        known = {
            eid: (doc_id, digest, status, metadata, (acl_public, sorted(acl_groups), acl_from_source))
            for eid, doc_id, digest, status, metadata, acl_public, acl_groups, acl_from_source in (
                Document.objects.filter(connector=self.connector).values_list(
                    "external_id", "id", "content_hash", "index_status", "metadata", "acl_public", "acl_groups",
                    "acl_from_source",
                )
            )
        }
        previous = {
            eid: meta for eid, (_, _, status, meta, _) in known.items() if status == Document.IndexStatus.INDEXED
        }
        retry = set(self._last_failures()) - set(known)
        seen_ids: set[str] = set()
        self.run.total = source.estimated_total()
        items = source.iter_documents(since=self.connector.sync_state or None, previous=previous)

        def retries():
            # Items that failed last time are read again even when an incremental source skips them.
            todo = sorted(retry - seen_ids)
            if todo:
                yield from source.fetch(todo)

        for item in chain(items, retries()):
            self._beat()
            if self.cancelled:
                return
            if item.external_id in seen_ids:
                continue
            seen_ids.add(item.external_id)
            if isinstance(item, ItemFailure):
                self._fail(item.external_id, item.reason)
                continue
            self.run.seen += 1
            if isinstance(item, ItemUnchanged):
                self.run.unchanged += 1
                continue
            self._take(item, known.get(item.external_id))
        for warning in getattr(source, "warnings", []):
            self._note(warning)

    def _last_failures(self) -> list[str]:
        last = (
            SyncRun.objects.filter(connector=self.connector, finished_at__isnull=False)
            .exclude(id=self.run.id)
            .order_by("-created_at")
            .first()
        )
        return list(last.failures.values_list("external_id", flat=True)) if last else []

    def _take(self, item: SourceDocument, known) -> None:
        if item.content and len(item.content) > settings.MAX_DOCUMENT_BYTES:
            self._fail(item.external_id, f"The item is larger than the limit of {settings.MAX_DOCUMENT_BYTES:,} bytes.")
            return
        digest = content_hash(item)
        if known and known[1] == digest and known[2] == Document.IndexStatus.INDEXED:
            self.run.unchanged += 1
            if known[3] != item.metadata:  # e.g. a touched file: remember its new mtime
                Document.objects.filter(id=known[0]).update(metadata=item.metadata)
            acl = self._acl_for(item)
            if acl != known[4]:  # e.g. a row's groups column changed, not its text: no re-embedding
                Document.objects.filter(id=known[0]).update(
                    acl_public=acl[0], acl_groups=acl[1], acl_from_source=acl[2]
                )
                Chunk.objects.filter(document_id=known[0]).update(acl_public=acl[0], acl_groups=acl[1])
            return
        try:
            parsed = parse_item(item, cancelled=self._cancel_requested)
        except ParseCancelled:
            self.cancelled = True  # the read loop returns at its next item
            return
        except ParseError as exc:
            self._fail(item.external_id, str(exc))
            return
        if not parsed.text.strip():
            self._fail(item.external_id, "No text could be extracted (empty, or a scanned image without text).")
            return
        document_id, created = self._store(item, digest, parsed, known)
        if created:
            self.run.added += 1
        else:
            self.run.updated += 1
        self._queue(document_id, len(parsed.text))

    def _acl_for(self, item: SourceDocument) -> tuple[bool, list[str], bool]:
        if item.acl_groups is not None or item.acl_public is not None:
            return bool(item.acl_public), sorted(set(item.acl_groups or ())), True
        if not hasattr(self, "_acl_source"):

            self._acl_source = connector_acl_source(self.connector)
        rule = self._acl_source.acl_rule(item.external_id) if self._acl_source is not None else None
        if rule is not None:  # a setting of the connector (a folder mapped to groups)
            return rule.public, sorted(set(rule.groups)), False
        if not hasattr(self, "_connector_groups"):  # one query per run, not per item
            self._connector_groups = self.connector.acl_group_names()
        return self.connector.is_public, self._connector_groups, False

    def _store(self, item: SourceDocument, digest: str, parsed, known) -> tuple[object, bool]:
        """Insert or update the document (marked pending); returns its id and whether it is new.

        One statement where the read at the start of the run says what to do (an INSERT for a
        new item, an UPDATE by id for a known one); update_or_create (a locked read, a savepoint,
        the write) only when that guess fails: the row came or went meanwhile."""
        acl_public, acl_groups, acl_from_source = self._acl_for(item)
        values = {
            "title": parsed.title[:500],
            "location": item.location[:2048],
            "url": item.url[:2048],
            "media_type": item.media_type,
            "text": parsed.text,
            "headings": parsed.headings,
            # The full-text vector is built in the document's own language's configuration.
            "language": document_configuration(title=parsed.title, text=parsed.text),
            "content_hash": digest,
            "metadata": item.metadata,
            "acl_public": acl_public,
            "acl_groups": acl_groups,
            "acl_from_source": acl_from_source,
            "source_modified_at": item.modified_at,
            "index_status": Document.IndexStatus.PENDING,
            "index_error": "",
            "pending_run": self.run,
        }
        if known is not None:
            if Document.objects.filter(id=known[0], connector=self.connector).update(**values):
                return known[0], False
        else:
            try:
                with transaction.atomic():
                    return Document.objects.create(connector=self.connector, external_id=item.external_id,
                                                   **values).id, True
            except IntegrityError:
                pass
        document, created = Document.objects.update_or_create(
            connector=self.connector, external_id=item.external_id, defaults=values
        )
        return document.id, created

    # --- handing work to the index queue ----------------------------------------------------
    def _queue(self, document_id, chars: int) -> None:
        self.batch.append(document_id)
        self.batch_chars += chars
        self.run.to_index += 1
        if index_batch_full(len(self.batch), self.batch_chars):
            self._flush()

    def _flush(self) -> None:

        if not self.batch:
            return
        self._beat(force=True)
        enqueue(INDEX_DOCUMENTS, str(self.run.id), [str(i) for i in self.batch])
        self.batch, self.batch_chars = [], 0

    def _queue_everything(self) -> None:
        """Re-index: every document again, from its stored text."""
        documents = Document.objects.filter(connector=self.connector)
        documents.update(index_status=Document.IndexStatus.PENDING, pending_run=self.run, index_error="")
        for document_id, length in documents.values_list("id", "text").iterator():
            self._queue(document_id, len(length))

    def _queue_orphans(self) -> None:
        """Pending documents left by a run that died are indexed by this one."""
        orphans = Document.objects.filter(connector=self.connector, index_status=Document.IndexStatus.PENDING).exclude(
            pending_run=self.run
        )
        for document_id, text in orphans.values_list("id", "text").iterator():
            Document.objects.filter(id=document_id).update(pending_run=self.run)
            self._queue(document_id, len(text))

    # --- deletions, ACL and checkpoint ----------------------------------------------------------
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

        connector_acl_apply(connector=self.connector)

    def _save_checkpoint(self, source) -> None:
        if source.checkpoint != self.connector.sync_state:
            Connector.objects.filter(id=self.connector.id).update(sync_state=source.checkpoint)


# --- index stage ----------------------------------------------------------------------------------


def index_documents_execute(run_id, document_ids: list) -> int:
    """Chunk and embed pending documents in one batch; returns how many were indexed.

    A cancel is noticed after chunking and between embedding calls: the task stops within one
    embedding batch, and what it had not stored stays pending for the next run. A document that
    needs more than INDEX_MAX_CHUNKS chunks fails alone, with the reason. The batch's chunks are
    stored in one transaction (each document's swap stays atomic; a few statements in all).
    """
    if _run_cancelled(run_id):
        return 0  # the documents stay pending; the next run picks them up
    documents = list(
        Document.objects.filter(id__in=document_ids, index_status=Document.IndexStatus.PENDING).only(
            "id", "external_id", "title", "text", "headings", "content_hash", "language", "acl_public", "acl_groups",
            "connector_id",
        )
    )
    prepared = []
    for doc in documents:
        try:
            prepared.append((doc, chunks_prepare(title=doc.title, text=doc.text, headings=doc.headings)))
        except ChunkLimitExceeded as exc:
            _document_fail(run_id, doc, too_many_chunks_reason(exc))
    if _run_cancelled(run_id):
        return 0
    vectors = _embed_unless_cancelled(run_id, [chunk.embedded for _, chunks in prepared for chunk in chunks])
    if vectors is None:
        return 0
    entries, position = [], 0
    for doc, chunks in prepared:
        entries.append((doc, chunks, vectors[position : position + len(chunks)]))
        position += len(chunks)
    done = _store_chunks(entries)
    SyncRun.objects.filter(id=run_id).update(indexed=F("indexed") + done, heartbeat_at=timezone.now())
    sync_run_finish_if_done(run_id)
    sync_followup_start(run_id=run_id)
    return done


def _run_cancelled(run_id) -> bool:
    """Whether the run was cancelled (or removed with its connector) since the task started."""
    status = SyncRun.objects.filter(id=run_id).values_list("status", flat=True).first()
    return status is None or status == SyncRun.Status.CANCELLED


def _embed_unless_cancelled(run_id, texts: list[str]) -> list | None:
    """Embeddings of `texts`, one EMBEDDING_BATCH_SIZE call at a time; None once the run is cancelled."""
    embedder = get_embedder()
    size = settings.EMBEDDING_BATCH_SIZE
    vectors: list = []
    for start in range(0, len(texts), size):
        if start and _run_cancelled(run_id):
            return None
        vectors.extend(embedder.embed(texts[start : start + size]))
    return vectors


def _document_fail(run_id, doc: Document, reason: str) -> None:
    """One document of a batch cannot be indexed: it fails alone, with the reason on the run."""
    updated = Document.objects.filter(id=doc.id, index_status=Document.IndexStatus.PENDING).update(
        index_status=Document.IndexStatus.FAILED, index_error=reason, pending_run=None
    )
    if updated and SyncRun.objects.filter(id=run_id).exists():
        SyncFailure.objects.create(run_id=run_id, external_id=doc.external_id[:1024], reason=reason[:4000])
        SyncRun.objects.filter(id=run_id).update(failed=F("failed") + 1)


@transaction.atomic
def _store_chunks(entries) -> int:
    """Store (document, chunks, vectors) entries in one transaction; returns how many were stored."""
    # Lock the rows (in id order: two tasks never wait on each other crosswise). A document whose
    # text changed since it was chunked is left to the newer batch that indexes it.
    wanted = {doc.id: (doc, chunks, vectors) for doc, chunks, vectors in entries}
    current = (
        Document.objects.select_for_update()
        .filter(id__in=list(wanted), index_status=Document.IndexStatus.PENDING)
        .only("id", "connector_id", "content_hash", "title", "language", "acl_public", "acl_groups")
        .order_by("id")
    )
    stored = [(doc, wanted[doc.id][1], wanted[doc.id][2]) for doc in current
              if doc.content_hash == wanted[doc.id][0].content_hash]
    if not stored:
        return 0
    chunks_replace_many(stored, versions=versions_written())
    Document.objects.filter(id__in=[doc.id for doc, _, _ in stored]).update(
        index_status=Document.IndexStatus.INDEXED,
        pending_run=None,
        embedding_model=settings.EMBEDDING_MODEL,
        indexed_at=timezone.now(),
    )
    return len(stored)


def index_documents_fail(run_id, document_ids: list, reason: str) -> None:
    """The index stage gave up on a batch: record why, per document, and let the run end."""
    run = SyncRun.objects.filter(id=run_id).first()
    for document in Document.objects.filter(id__in=document_ids, index_status=Document.IndexStatus.PENDING):
        document.index_status = Document.IndexStatus.FAILED
        document.index_error = reason
        document.pending_run = None
        document.save(update_fields=["index_status", "index_error", "pending_run"])
        if run is not None:
            SyncFailure.objects.create(run=run, external_id=document.external_id, reason=f"Indexing failed: {reason}")
            SyncRun.objects.filter(id=run_id).update(failed=F("failed") + 1)
    sync_run_finish_if_done(run_id)
    sync_followup_start(run_id=run_id)


# --- ending a run -----------------------------------------------------------------------------------


def sync_run_finish_if_done(run_id) -> None:
    """End the run once its source is read and no document it queued is still pending."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(id=run_id).first()
        if run is None or run.status != SyncRun.Status.RUNNING or not run.fetch_done:
            return
        if Document.objects.filter(pending_run_id=run_id, index_status=Document.IndexStatus.PENDING).exists():
            return
    sync_run_finish(run_id, status=SyncRun.Status.SUCCEEDED)


def sync_run_finish(run_id, *, status: str, error: str = "") -> None:
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(id=run_id)
        if run.status not in SyncRun.ACTIVE:
            return
        run.status = status
        run.error = error
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        connector_update = {"status": Connector.Status.ERROR if error else Connector.Status.IDLE, "last_error": error}
        if status == SyncRun.Status.SUCCEEDED:
            connector_update["last_success_at"] = run.finished_at
        Connector.objects.filter(id=run.connector_id).update(**connector_update)
