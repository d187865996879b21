"""An evaluation corpus in the index: a "jsonl" connector synced in this process, then removed.

A connector of the same name over the same file is reused, and unchanged documents are skipped
by content hash, so a second run starts at once (`--keep`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections

from assistant.celery import app
from assistant.rag.evaluation.datasets import EvaluationError, corpus_titles, sha256_of
from connectors.indexing import embedded_text_fingerprint
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import ConnectorInvalid, connector_delete, connector_save, connector_sync_start
from connectors.sync import SyncBusy, sync_run_execute

SYNC_WAIT_SECONDS = 600


@dataclass
class Corpus:
    connector: Connector
    summary: dict
    titles: dict[str, str] = field(default_factory=dict)  # external id -> normalised title


def corpus_ingest(path: Path, name: str, *, progress_seconds: float, log) -> Corpus:
    """The connector over `path`, synced in this process, with the sync's numbers: a "jsonl"
    connector over a JSON Lines file, or a "folder" connector over a folder of documents (HTML,
    PDF, Markdown...: read by the product's parsers, structure included; ids are relative paths)."""
    name = " ".join(name.split())
    config = {"path": str(path)}
    kind = "folder" if path.is_dir() else "jsonl"
    connector = Connector.objects.admin_managed().filter(name=name).first()
    if connector is not None and (connector.kind != kind or connector.config.get("path") != str(path)):
        raise EvaluationError(
            f"A connector named {name!r} already exists over something else ({connector.kind}: "
            f"{connector.config.get('path', '')}); pass --name to use another name."
        )
    try:
        if connector is None:
            connector = connector_save(name=name, kind=kind, config=config, is_public=True)
            log(f"created connector {name!r} over {path}")
        else:
            log(f"reusing connector {name!r} (unchanged documents are skipped)")
    except ConnectorInvalid as exc:
        raise EvaluationError(str(exc)) from None
    titles = corpus_titles(path) if kind == "jsonl" else {}
    started = time.monotonic()
    progress = _Progress(connector.id, progress_seconds, log)
    progress.start()
    try:
        run = _sync(connector, log)
    finally:
        progress.stop()
    seconds = time.monotonic() - started
    if run.status != SyncRun.Status.SUCCEEDED:
        raise EvaluationError(f"The sync of {name!r} ended {run.status}: {run.error or run.notes}")
    indexed = Document.objects.filter(connector=connector, index_status=Document.IndexStatus.INDEXED).count()
    summary = {
        "path": str(path),
        "sha256": sha256_of(path)[:16] if kind == "jsonl" else "",
        "ids_in_file": len(titles) if kind == "jsonl" else None,
        "documents_indexed": indexed,
        "chunks": Chunk.objects.filter(connector=connector).count(),
        "added": run.added,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "failed": run.failed,
        "seconds": round(seconds, 1),
    }
    log(
        f"ingested {name!r}: {indexed} documents, {summary['chunks']} chunks "
        f"({run.added} added, {run.updated} updated, {run.unchanged} unchanged, {run.failed} failed) "
        f"in {seconds:.1f}s"
    )
    for failure in run.failures.all()[:5] if run.failed else ():
        log(f"  failed {failure.external_id}: {failure.reason}")
    return Corpus(connector, summary, titles)


def corpus_remove(corpus: Corpus, *, keep: bool, log) -> None:
    if keep:
        log(f"kept connector {corpus.connector.name!r} (--keep)")
        return
    connector_delete(connector=corpus.connector)


def _sync(connector, log):
    """Run a sync to its end here: tasks are eager, so connector_sync_start executes it inline
    once its transaction commits; a run it could not execute (queued inside an outer
    transaction, or left by a killed process) is executed or waited for."""
    deadline = time.monotonic() + SYNC_WAIT_SECONDS
    while True:
        run = connector_sync_start(connector=connector)
        run.refresh_from_db()
        if run.status in SyncRun.ACTIVE:
            try:
                sync_run_execute(run.id)
            except SyncBusy:
                pass
            run.refresh_from_db()
        if run.status not in SyncRun.ACTIVE:
            return run
        if time.monotonic() > deadline:
            raise EvaluationError(f"Sync run {run.id} of {connector.name!r} is still {run.status} in another process.")
        log(f"waiting for sync run {run.id} ({run.status}) held by another process...")
        time.sleep(5)


@contextlib.contextmanager
def eager_tasks():
    """Index batches run inline, in this process (no worker needed), and their errors surface."""
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = saved


def index_settings() -> dict:
    """What was embedded and how it is searched: stored with every report."""
    return {
        "embedding_model": settings.EMBEDDING_MODEL,
        "chunk_tokens": settings.CHUNK_TOKENS,
        "chunk_overlap_tokens": settings.CHUNK_OVERLAP_TOKENS,
        "chunk_context": settings.CHUNK_CONTEXT,
        "embedded_text": embedded_text_fingerprint(),
        "rrf_k": settings.RAG_RRF_K,
        "dense_weight": settings.RAG_DENSE_WEIGHT,
        "fulltext_weight": settings.RAG_FULLTEXT_WEIGHT,
        "fulltext_languages": list(settings.RAG_FULLTEXT_LANGUAGES),
        "detect_languages": list(settings.RAG_DETECT_LANGUAGES),
        "embedding_languages": sorted(settings.EMBEDDING_LANGUAGES),
        "uncovered_dense_weight": settings.RAG_UNCOVERED_DENSE_WEIGHT,
        "fulltext_ranking": "bm25",
        "bm25_k1": settings.RAG_BM25_K1,
        "bm25_b": settings.RAG_BM25_B,
        "fulltext_max_candidates": settings.RAG_FULLTEXT_MAX_CANDIDATES,
        "ef_search": settings.RAG_EF_SEARCH,
    }


class _Progress:
    """Prints the sync's counters every few seconds from a thread (its own DB connection)."""

    def __init__(self, connector_id, every: float, log):
        self.connector_id, self.every, self.log = connector_id, every, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evaluate-progress", daemon=True)
        self._started = time.monotonic()

    def start(self) -> None:
        if self.every > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.every):
                run = SyncRun.objects.filter(connector_id=self.connector_id, status__in=SyncRun.ACTIVE).first()
                if run is None:
                    continue
                elapsed = time.monotonic() - self._started
                total = f"/{run.total:,}" if run.total else ""
                rate = run.indexed / elapsed if elapsed else 0.0
                self.log(
                    f"  ingest {elapsed:5.0f}s: read {run.seen:,}{total} (unchanged {run.unchanged:,}, "
                    f"failed {run.failed:,}), indexed {run.indexed:,}/{run.to_index:,} ({rate:.1f} docs/s)"
                )
        except Exception as exc:  # progress is a courtesy: never break the evaluation
            self.log(f"  (progress unavailable: {exc.__class__.__name__})")
        finally:
            close_old_connections()
            connections.close_all()
