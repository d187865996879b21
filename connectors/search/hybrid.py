"""Hybrid search: dense and full-text candidates fused (connectors.search.fusion; RAG_FUSION_*)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from connectors.index_version import live_index
from connectors.models import Chunk
from connectors.search.dense import chunks_dense_scored
from connectors.search.filters import NO_FILTERS, SearchFilters, few_enough_to_scan
from connectors.search.fulltext import chunks_fulltext_scored
from connectors.search.fusion import fused_chunks
from connectors.stage_timing import lap, run_beside
from connectors.text_language import embedding_covers


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float
    dense_rank: int | None
    fulltext_rank: int | None


@lru_cache(maxsize=1)
def _side_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.RAG_SIDE_THREADS, thread_name_prefix="search-side")


def _pooled() -> bool:
    return "pool" in settings.DATABASES["default"].get("OPTIONS", {})


def _on_side_connection(function, **kwargs):
    """Run `function` in a side thread, on that thread's own database connection: kept open
    between searches, or handed back to the pool after each one where the process has a pool.
    A connection the database dropped (a restart) is replaced once."""
    pooled = _pooled()
    try:
        try:
            return function(**kwargs)
        except (OperationalError, InterfaceError):
            connection.close()
            return function(**kwargs)
    finally:
        if pooled:
            connection.close()  # back to the pool, for the requests


def chunks_search(
    *,
    embedding: list[float] | None,
    text: str,
    groups: list[str],
    k: int,
    mode: str = "hybrid",
    candidates: int | None = None,
    filters: SearchFilters = NO_FILTERS,
) -> list[ScoredChunk]:
    """The k best chunks for a query among those the reader may see.

    mode "dense" (vectors), "fulltext" (PostgreSQL FTS) or "hybrid": both candidate lists
    fused by RAG_FUSION (reciprocal rank fusion by default: sum of weight / (RAG_RRF_K + rank))
    at RAG_FUSION_LEVEL: "document" collapses each side to its documents first, so that two
    sides that found different chunks of one document agree on it; "chunk" with
    RAG_FUSION_DOCUMENT_CHUNKS = n > 1 ranks a document by the sum of its n best fused chunks.
    Either way chunks then follow their document's order, and a chunk's score is its
    document's. See connectors.search.fusion.

    The dense side weighs RAG_DENSE_WEIGHT, or RAG_UNCOVERED_DENSE_WEIGHT for a question in a
    language the embedding model does not know (EMBEDDING_LANGUAGES; its vectors say little
    there), and is not searched at all at weight 0.

    Both sides search the live index version read once here, so a search sees one version only,
    even while a rebuild switches versions. While the live version's vectors come from another
    embedding model than the configured one (a rebuild for a new model not finished yet), the
    question's embedding cannot be compared with them: the search is full text only.
    """
    if mode not in ("dense", "fulltext", "hybrid"):
        raise ValueError(f"unknown search mode {mode!r}")
    pool = max(k, candidates or settings.RAG_CANDIDATES)
    live = live_index()
    lap("search_index_version")
    weights = side_weights(text)
    want_dense = mode != "fulltext" and embedding is not None and live.vectors_comparable()
    if mode == "hybrid" and weights[0] == 0:
        want_dense = False
    want_fulltext = mode != "dense" and bool(text.strip())
    # Whether the filters leave few enough chunks to rank exactly: counted once for both sides.
    exact_scan = few_enough_to_scan(filters) if want_dense and want_fulltext else None
    side_args = {"groups": groups, "k": pool, "filters": filters, "version": live.number, "exact_scan": exact_scan}
    side = None
    if want_dense and want_fulltext and settings.RAG_PARALLEL_SIDES and not connection.in_atomic_block:
        # Each side is a query of its own: the full-text one runs on a second connection
        # meanwhile. (Inside a transaction the other connection could not see its writes.)
        side = run_beside(
            _side_executor(), "fulltext_search", _on_side_connection, chunks_fulltext_scored, text=text, **side_args
        )
    dense = chunks_dense_scored(embedding=embedding, **side_args) if want_dense else []
    lap("dense_search")
    if side is not None:
        if _pooled():
            # Lend this connection back while waiting: with every pooled connection held by
            # a request waiting on its side query, the side queries would wait for ever.
            connection.close()
        fulltext = side.result()
        lap("fulltext_search_wait")  # what the full-text side took beyond the dense one
    elif want_fulltext:
        fulltext = chunks_fulltext_scored(text=text, **side_args)
        lap("fulltext_search")
    else:
        fulltext = []
    dense_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(dense, start=1)}
    fulltext_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(fulltext, start=1)}
    scores = dict(fuse_sides(dense, fulltext, weights)[:k])
    lap("fusion")
    best = list(scores)
    chunks = (
        Chunk.objects.select_related("document", "document__connector")
        .defer("embedding", "search_vector", "document__text")
        .in_bulk(best)
    )
    lap("hits_load")
    return [
        ScoredChunk(chunks[cid], scores[cid], dense_rank.get(cid), fulltext_rank.get(cid)) for cid in best if cid in chunks
    ]


def side_weights(text: str) -> tuple[float, float]:
    """(dense, full text) weights for this question: the dense side counts less where the
    embedding model does not cover the question's language."""
    dense = settings.RAG_DENSE_WEIGHT if embedding_covers(text) else settings.RAG_UNCOVERED_DENSE_WEIGHT
    return dense, settings.RAG_FULLTEXT_WEIGHT


def fuse_sides(
    dense: list[tuple[int, float]], fulltext: list[tuple[int, float]], weights: tuple[float, float] | None = None
) -> list[tuple[int, float]]:
    """Both sides' chunks in the product's fused order (the RAG_FUSION_* settings), best first;
    `weights` (dense, full text) default to RAG_DENSE_WEIGHT and RAG_FULLTEXT_WEIGHT."""
    needs_documents = settings.RAG_FUSION_LEVEL == "document" or settings.RAG_FUSION_DOCUMENT_CHUNKS > 1
    document_of = None
    if needs_documents and dense and fulltext:
        ids = {chunk_id for chunk_id, _ in dense} | {chunk_id for chunk_id, _ in fulltext}
        document_of = dict(Chunk.objects.filter(id__in=ids).values_list("id", "document_id"))
        # A chunk removed by a sync since the side queries ran is left out.
        dense = [pair for pair in dense if pair[0] in document_of]
        fulltext = [pair for pair in fulltext if pair[0] in document_of]
    return fused_chunks(
        [dense, fulltext], list(weights or (settings.RAG_DENSE_WEIGHT, settings.RAG_FULLTEXT_WEIGHT)), document_of,
        method=settings.RAG_FUSION, rrf_k=settings.RAG_RRF_K, level=settings.RAG_FUSION_LEVEL,
        top=settings.RAG_FUSION_DOCUMENT_CHUNKS,
    )
