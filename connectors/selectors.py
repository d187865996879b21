"""Reads of the index, always through the reader's ACL."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, FloatField, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from pgvector.django import CosineDistance

from connectors import fulltext as fts
from connectors.models import Chunk, Document


def acl_groups_of(user) -> list[str]:
    if not user.is_authenticated or not user.is_active:
        return []
    return sorted(user.groups.values_list("name", flat=True))


def acl_filter(groups: list[str]) -> Q:
    """Rows a reader in `groups` may see: public ones, or those shared with one of the groups."""
    condition = Q(acl_public=True)
    if groups:
        condition |= Q(acl_groups__overlap=groups)
    return condition


def documents_visible(*, user) -> QuerySet[Document]:
    if not user.is_authenticated or not user.is_active:
        return Document.objects.none()
    return Document.objects.filter(acl_filter(acl_groups_of(user)))


def document_get_visible(*, user, document_id) -> Document:
    """The document if the user may see it; Document.DoesNotExist otherwise (never a hint)."""
    return documents_visible(user=user).select_related("connector").get(id=document_id)


@lru_cache(maxsize=1)
def pgvector_version() -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return tuple(int(part) for part in row[0].split(".")) if row else (0,)


@dataclass(frozen=True)
class SearchFilters:
    """Optional restrictions from the chat: connectors, metadata values, a date range."""

    connector_ids: tuple = ()
    metadata: dict = field(default_factory=dict)
    modified_after: dt.datetime | None = None
    modified_before: dt.datetime | None = None

    def apply(self, queryset: QuerySet[Chunk]) -> QuerySet[Chunk]:
        if self.connector_ids:
            queryset = queryset.filter(connector_id__in=self.connector_ids)
        if self.metadata:
            queryset = queryset.filter(document__metadata__contains=self.metadata)
        if self.modified_after:
            queryset = queryset.filter(document__source_modified_at__gte=self.modified_after)
        if self.modified_before:
            queryset = queryset.filter(document__source_modified_at__lt=self.modified_before)
        return queryset


NO_FILTERS = SearchFilters()


def _visible_chunks(groups: list[str], filters: SearchFilters) -> QuerySet[Chunk]:
    return filters.apply(Chunk.objects.filter(acl_filter(groups)))


def chunk_ids_dense(*, embedding: list[float], groups: list[str], k: int, filters: SearchFilters = NO_FILTERS) -> list[int]:
    """Ids of the k chunks nearest to `embedding` (cosine) among those the reader may see.

    The ACL is a condition of the same query. With pgvector >= 0.8 the HNSW scan is
    iterative, so a selective ACL still yields k rows instead of fewer; older versions
    (the embedded pgserver has 0.6) scan ef_search candidates and may return fewer, and any
    version gives up after hnsw.max_scan_tuples. When the scan returns fewer than k, an
    exact scan answers instead, so fewer than k means fewer than k exist.
    """
    nearest = (
        _visible_chunks(groups, filters)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")
        .values_list("id", "distance")
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            statements = f"SET LOCAL hnsw.ef_search = {int(max(settings.RAG_EF_SEARCH, k))}"
            if pgvector_version() >= (0, 8):
                statements += "; SET LOCAL hnsw.iterative_scan = relaxed_order"
            cursor.execute(statements)  # one round trip
        rows = list(nearest[:k])
        if len(rows) < k:
            # The approximate scan can stop early (hnsw.max_scan_tuples, a graph region full of
            # deleted rows not yet vacuumed, pgvector < 0.8): fewer than k rows is then not
            # proof that fewer exist. Ask again exactly: ordering by `distance + 0` is an
            # order the HNSW index cannot give, so the planner sorts the visible chunks (found
            # through the ACL's GIN index, cheap when few are visible, which is when this happens).
            exact = nearest.filter(embedding__isnull=False).order_by(
                ExpressionWrapper(F("distance") + Value(0.0), output_field=FloatField())
            )
            rows = list(exact[:k])
    # relaxed_order may return neighbours slightly out of order
    return [chunk_id for chunk_id, _ in sorted(rows, key=lambda row: row[1])]


def fulltext_query(text: str) -> RawSQL:
    """websearch_to_tsquery in each configured language, OR-ed.

    A plain question is matched on any of its words; a query with operators ("exact phrase",
    -excluded) keeps websearch semantics. (The ranking, `chunk_ids_fulltext`, narrows which
    words find candidates; this is the plain matching condition.)
    """
    parts, params = [], []
    keep_and = fts.has_operators(text)
    for language in settings.RAG_FULLTEXT_LANGUAGES:
        if keep_and:
            parts.append("websearch_to_tsquery(%s::regconfig, %s)")
        else:
            parts.append("replace(websearch_to_tsquery(%s::regconfig, %s)::text, ' & ', ' | ')::tsquery")
        params += [language, text]
    return RawSQL("(" + " || ".join(parts) + ")", params)


def _fulltext_scored(tsquery: str, plan, stats, groups, filters, k: int, budget: int) -> list[tuple[int, float]]:
    """(id, BM25 score) of the best k of at most `budget` visible chunks that match `tsquery`."""
    column = f"{Chunk._meta.db_table}.search_vector"
    candidates = (
        _visible_chunks(groups, filters)
        .alias(matches=RawSQL(f"{column} @@ %s::tsquery", [tsquery], output_field=BooleanField()))
        .filter(matches=True)
        .order_by()
        .values_list("id", "search_vector")[:budget]
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # A parallel scan (or JIT compilation) costs more to start than it saves on a few hundred
        # rows; a parallel or synchronized scan would also make the candidates cut at the budget
        # differ from run to run.
        cursor.execute(
            "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL synchronize_seqscans = off; SET LOCAL jit = off"
        )
        cursor.execute(*fts.bm25_query(*candidates.query.sql_with_params(), plan, stats, k))
        return cursor.fetchall()


def chunk_ids_fulltext(*, text: str, groups: list[str], k: int, filters: SearchFilters = NO_FILTERS) -> list[int]:
    """Ids of the k chunks that best match `text`, ranked by BM25 (see connectors.fulltext).

    Candidates come from the GIN index with the reader's ACL and filters in the same query,
    at most RAG_FULLTEXT_MAX_CANDIDATES per stage: first those with the question's rarest
    words, then, only if they could still make the top k, those with enough of its common ones.
    """
    parsed, reltuples = fts.parse_query(text)
    if not parsed.lexemes:
        return []
    stats = fts.statistics_for(parsed.lexemes, reltuples)
    budget = max(k, settings.RAG_FULLTEXT_MAX_CANDIDATES)
    plan = fts.plan_for(parsed, stats, budget)
    if plan is None:
        return []
    scores: dict[int, float] = {}
    if plan.first:
        scores.update(_fulltext_scored(plan.first, plan, stats, groups, filters, k, budget))
    if not plan.strict:
        threshold = sorted(scores.values(), reverse=True)[k - 1] if len(scores) >= k else None
        for tsquery in fts.later_stages(plan, threshold):
            scores.update(_fulltext_scored(tsquery, plan, stats, groups, filters, k, budget))
            if len(scores) >= k:
                break
    return sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:k]


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
    from django.db import InterfaceError, OperationalError

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
    fused by reciprocal rank fusion, score = sum of weight / (RAG_RRF_K + rank).
    """
    if mode not in ("dense", "fulltext", "hybrid"):
        raise ValueError(f"unknown search mode {mode!r}")
    pool = max(k, candidates or settings.RAG_CANDIDATES)
    want_dense = mode != "fulltext" and embedding is not None
    want_fulltext = mode != "dense" and bool(text.strip())
    side = None
    if want_dense and want_fulltext and settings.RAG_PARALLEL_SIDES and not connection.in_atomic_block:
        # Each side is a query of its own: the full-text one runs on a second connection
        # meanwhile. (Inside a transaction the other connection could not see its writes.)
        side = _side_executor().submit(
            _on_side_connection, chunk_ids_fulltext, text=text, groups=groups, k=pool, filters=filters
        )
    dense = chunk_ids_dense(embedding=embedding, groups=groups, k=pool, filters=filters) if want_dense else []
    if side is not None:
        if _pooled():
            # Lend this connection back while waiting: with every pooled connection held by
            # a request waiting on its side query, the side queries would wait for ever.
            connection.close()
        fulltext = side.result()
    elif want_fulltext:
        fulltext = chunk_ids_fulltext(text=text, groups=groups, k=pool, filters=filters)
    else:
        fulltext = []
    dense_rank = {chunk_id: rank for rank, chunk_id in enumerate(dense, start=1)}
    fulltext_rank = {chunk_id: rank for rank, chunk_id in enumerate(fulltext, start=1)}
    scores: dict[int, float] = {}
    for chunk_id, rank in dense_rank.items():
        scores[chunk_id] = scores.get(chunk_id, 0.0) + settings.RAG_DENSE_WEIGHT / (settings.RAG_RRF_K + rank)
    for chunk_id, rank in fulltext_rank.items():
        scores[chunk_id] = scores.get(chunk_id, 0.0) + settings.RAG_FULLTEXT_WEIGHT / (settings.RAG_RRF_K + rank)
    best = sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:k]
    chunks = (
        Chunk.objects.select_related("document", "document__connector")
        .defer("embedding", "search_vector", "document__text")
        .in_bulk(best)
    )
    return [
        ScoredChunk(chunks[cid], scores[cid], dense_rank.get(cid), fulltext_rank.get(cid)) for cid in best if cid in chunks
    ]


@dataclass(frozen=True)
class ChunkSpan:
    id: int
    ordinal: int
    start: int
    end: int
    tokens: int


def documents_layout(document_ids) -> dict:
    """For each document: its text and its chunks' positions, in order (no vectors loaded)."""
    layout: dict = {
        doc_id: {"text": text, "chunks": []}
        for doc_id, text in Document.objects.filter(id__in=document_ids).values_list("id", "text")
    }
    rows = (
        Chunk.objects.filter(document_id__in=document_ids)
        .order_by("document_id", "ordinal")
        .values_list("document_id", "id", "ordinal", "start_char", "end_char", "token_count")
    )
    for doc_id, chunk_id, ordinal, start, end, tokens in rows:
        layout[doc_id]["chunks"].append(ChunkSpan(chunk_id, ordinal, start, end, tokens))
    return layout
