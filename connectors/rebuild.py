"""Rebuilding the whole index beside the live one, then switching, without downtime.

1. `index_rebuild_start` creates a version in "building" with the configured recipe
   (connectors.index_version) and queues `index_rebuild_plan` (queue "index").
2. The plan queues batches of the documents that have no chunks in the new version yet
   (indexed ones, and those waiting for their sync's index task: their stored text); each
   batch (`index_rebuild_batch`, queue "index", any number of workers) chunks and embeds its
   documents from their stored text and stores each one's chunks in one transaction. A batch
   done twice (a worker killed, a task delivered again, a resumed plan) skips the documents
   already there: no duplicates, no work done twice.
3. Meanwhile syncs store what they index into both versions (`versions_written`), so nothing
   indexed during the rebuild is missing after the switch.
4. After each batch the missing documents are counted (the progress); at zero one transaction
   makes the new version live and retires the old one. Searches read the live version's number
   once per search and query that version only, so a search sees one complete version, old or new.
5. A retired version's chunks are deleted in batches INDEX_PURGE_GRACE_SECONDS later (searches
   that read its number just before the switch finish first), by the beat's check.

A rebuild whose workers all died resumes: the beat's check queues the plan again when its
version has had no progress for INDEX_REBUILD_STALL_SECONDS, and so does starting it again.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Length
from django.utils import timezone

from connectors.audit import audit_record
from connectors.chunk_store import chunks_replace
from connectors.chunking import ChunkLimitExceeded
from connectors.index_version import configured_fingerprint, index_recipe, live_version_ensure
from connectors.indexing import chunks_prepare, get_embedder, too_many_chunks_reason
from connectors.models import Chunk, Document, IndexVersion
from connectors.queue import INDEX_REBUILD_BATCH, INDEX_REBUILD_PLAN, INDEX_VERSION_PURGE, enqueue
from connectors.sync import index_batch_chars

logger = logging.getLogger(__name__)

PURGE_BATCH = 2000


#: Documents a version must hold: indexed ones, and those waiting for their sync's index task
#: (their stored text is embedded; the sync's task stores it again, into both versions).
WANTED = (Document.IndexStatus.INDEXED, Document.IndexStatus.PENDING)


def _wanted() -> QuerySet[Document]:
    return Document.objects.filter(index_status__in=WANTED)


def documents_missing(number: int) -> QuerySet[Document]:
    """Documents (indexed or waiting to be) with no chunk in version `number` yet."""
    return _wanted().exclude(Exists(Chunk.objects.filter(document_id=OuterRef("pk"), index_version=number)))


def _building(number: int) -> bool:
    """Whether version `number` is building, with the recipe this worker is configured for (a worker
    configured otherwise, e.g. during a rolling restart, must not fill it with chunks made its way)."""
    return IndexVersion.objects.filter(
        number=number, state=IndexVersion.State.BUILDING, fingerprint=configured_fingerprint()
    ).exists()


# --- starting ----------------------------------------------------------------------------------


def index_rebuild_start(*, actor=None) -> tuple[IndexVersion, bool]:
    """Start a rebuild with the configured recipe, or resume the one building it.

    Returns the building version and whether it is new. A rebuild building another recipe
    (the settings changed again meanwhile) is retired and a new one starts.
    """
    with transaction.atomic():
        live = live_version_ensure()  # FOR UPDATE: waits for stores in flight (see versions_written)
        building = IndexVersion.objects.select_for_update().filter(state=IndexVersion.State.BUILDING).first()
        created = building is None or building.fingerprint != configured_fingerprint()
        if building is not None and created:
            _retire(building)
        if created:
            recipe = index_recipe()
            building = IndexVersion.objects.create(
                number=max(live.number, _top_number()) + 1, state=IndexVersion.State.BUILDING, recipe=recipe,
                fingerprint=configured_fingerprint(), documents_total=_wanted().count(), started_by=_user(actor),
                heartbeat_at=timezone.now(),
            )
        audit_record(
            actor=actor, action="index.rebuild_started" if created else "index.rebuild_resumed",
            target=("index_version", str(building.number), f"v{building.number}"), details={"recipe": building.recipe},
        )
        number = building.number
        transaction.on_commit(lambda: enqueue(INDEX_REBUILD_PLAN, number))
    return building, created


def _top_number() -> int:
    return IndexVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def _retire(version: IndexVersion) -> None:
    version.state = IndexVersion.State.RETIRED
    version.retired_at = timezone.now()
    version.save(update_fields=["state", "retired_at"])


# --- planning and batches -------------------------------------------------------------------------


def rebuild_plan_execute(number: int) -> int:
    """Queue batches of the documents still missing from version `number`; returns how many batches."""
    if not _building(number):
        return 0
    IndexVersion.objects.filter(number=number).update(heartbeat_at=timezone.now())
    batches, batch, chars = 0, [], 0
    for document_id, length in documents_missing(number).order_by("id").values_list("id", Length("text")).iterator():
        batch.append(str(document_id))
        chars += length or 0
        if chars >= index_batch_chars() or len(batch) >= settings.EMBEDDING_BATCH_SIZE:
            enqueue(INDEX_REBUILD_BATCH, number, batch)
            batches, batch, chars = batches + 1, [], 0
    if batch:
        enqueue(INDEX_REBUILD_BATCH, number, batch)
        batches += 1
    rebuild_switch_if_done(number)  # nothing to do (an empty index, or everything was there)
    return batches


def rebuild_batch_execute(number: int, document_ids: list) -> int:
    """Chunk, embed and store these documents into version `number`; returns how many were stored."""
    if not _building(number):
        return 0
    documents = list(
        documents_missing(number).filter(id__in=document_ids).only(
            "id", "title", "text", "headings", "content_hash", "connector_id"
        )
    )
    prepared = []
    for document in documents:
        try:
            prepared.append((document, chunks_prepare(title=document.title, text=document.text,
                                                      headings=document.headings)))
        except ChunkLimitExceeded as exc:
            Document.objects.filter(id=document.id).update(
                index_status=Document.IndexStatus.FAILED, index_error=too_many_chunks_reason(exc)
            )
    vectors = _embed_while_building(number, [chunk.embedded for _, chunks in prepared for chunk in chunks])
    if vectors is None:
        return 0
    stored, position = 0, 0
    for document, chunks in prepared:
        stored += _store_in_version(document, chunks, vectors[position : position + len(chunks)], number)
        position += len(chunks)
    rebuild_switch_if_done(number)
    return stored


def _embed_while_building(number: int, texts: list[str]) -> list | None:
    """Embeddings of `texts`, one EMBEDDING_BATCH_SIZE call at a time; None once the version is retired."""
    embedder, size, vectors = get_embedder(), settings.EMBEDDING_BATCH_SIZE, []
    for start in range(0, len(texts), size):
        if start and not _building(number):
            return None
        vectors.extend(embedder.embed(texts[start : start + size]))
    return vectors


@transaction.atomic
def _store_in_version(document: Document, chunks, vectors, number: int) -> bool:
    current = (
        Document.objects.select_for_update()
        .filter(id=document.id, content_hash=document.content_hash, index_status__in=WANTED)
        .first()
    )
    if current is None:
        return False  # changed since it was read: its sync's index task stores it into this version
    if Chunk.objects.filter(document_id=document.id, index_version=number).exists():
        return False  # a sync (or another delivery of this batch) stored it meanwhile
    chunks_replace(document=current, chunks=chunks, vectors=vectors, versions=[number])
    IndexVersion.objects.filter(number=number).update(chunks_done=F("chunks_done") + len(chunks))
    return True


# --- switching ---------------------------------------------------------------------------------------


def rebuild_switch_if_done(number: int) -> bool:
    """Record the progress; when no document is missing from version `number`, make it live."""
    total, missing = _wanted().count(), documents_missing(number).count()
    IndexVersion.objects.filter(number=number, state=IndexVersion.State.BUILDING).update(
        documents_total=total, documents_done=total - missing, heartbeat_at=timezone.now()
    )
    if missing:
        return False
    with transaction.atomic():
        # FOR UPDATE on both rows: waits for the stores in flight (they hold them FOR KEY SHARE).
        rows = IndexVersion.objects.select_for_update().exclude(state=IndexVersion.State.RETIRED)
        versions = {v.state: v for v in rows}
        building = versions.get(IndexVersion.State.BUILDING)
        if building is None or building.number != number or documents_missing(number).exists():
            return False
        live = versions.get(IndexVersion.State.LIVE)
        if live is not None:
            _retire(live)
        building.state, building.live_at = IndexVersion.State.LIVE, timezone.now()
        building.documents_done = building.documents_total = _wanted().count()
        building.save(update_fields=["state", "live_at", "documents_done", "documents_total"])
        audit_record(
            actor=None, action="index.switched", target=("index_version", str(number), f"v{number}"),
            details={"retired": live.number if live else None},
        )
    logger.info("index version %s is live", number)
    return True


# --- retired versions ------------------------------------------------------------------------------


def retired_version_purge(number: int) -> int:
    """Delete a retired version's chunks, PURGE_BATCH per transaction; returns how many."""
    if not IndexVersion.objects.filter(number=number, state=IndexVersion.State.RETIRED).exists():
        return 0  # never the live or the building one
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(Chunk.objects.filter(index_version=number).values_list("id", flat=True)[:PURGE_BATCH])
            if not ids:
                break
            deleted += Chunk.objects.filter(id__in=ids).delete()[0]
    IndexVersion.objects.filter(number=number).update(purged_at=timezone.now())
    return deleted


def index_versions_check(now: dt.datetime | None = None) -> dict:
    """Fired by beat: purge retired versions past their grace, resume a rebuild that stalled."""
    now = now or timezone.now()
    due = IndexVersion.objects.filter(
        state=IndexVersion.State.RETIRED, purged_at__isnull=True,
        retired_at__lte=now - dt.timedelta(seconds=settings.INDEX_PURGE_GRACE_SECONDS),
    ).values_list("number", flat=True)
    purged = list(due)
    for number in purged:
        enqueue(INDEX_VERSION_PURGE, number)
    stalled = list(
        IndexVersion.objects.filter(
            state=IndexVersion.State.BUILDING,
            heartbeat_at__lt=now - dt.timedelta(seconds=settings.INDEX_REBUILD_STALL_SECONDS),
        ).values_list("number", flat=True)
    )
    for number in stalled:
        enqueue(INDEX_REBUILD_PLAN, number)
    return {"purged": purged, "resumed": stalled}
