"""Dense search: the chunks nearest to a question's embedding (pgvector HNSW, cosine)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.models import ExpressionWrapper, F, FloatField, Value
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, HalfVectorField

from connectors.search.filters import NO_FILTERS, SearchFilters, few_enough_to_scan, visible_chunks
from connectors.search.local_settings import rows_with_settings


@lru_cache(maxsize=1)
def pgvector_version() -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return tuple(int(part) for part in row[0].split(".")) if row else (0,)


# The HNSW index is built on `embedding::halfvec(N)` (migration 0008): half the memory of the
# float32 vectors, same recall (README, "Retrieval at a million chunks"). A database whose
# pgvector predates halfvec (< 0.7, the embedded pgserver) keeps the float32 index instead.
HALFVEC_INDEX = "chunk_embedding_halfvec_hnsw"


@lru_cache(maxsize=1)
def halfvec_index() -> bool:
    """Whether the chunks' HNSW index is the halfvec one: the query must then order by the same
    expression, or the planner cannot use the index."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE tablename = 'connectors_chunk' AND indexname = %s",
                       [HALFVEC_INDEX])
        return cursor.fetchone() is not None


def indexed_embedding():
    """The expression the HNSW index is built on (and the one to order by)."""
    if halfvec_index():
        return Cast("embedding", HalfVectorField(dimensions=settings.EMBEDDING_DIMENSIONS))
    return F("embedding")


def chunk_ids_dense(
    *, embedding: list[float], groups: list[str], k: int, filters: SearchFilters = NO_FILTERS,
    version: int | None = None,
) -> list[int]:
    """Ids of the k chunks nearest to `embedding` (cosine) among those the reader may see."""
    return [chunk_id for chunk_id, _ in chunks_dense_scored(embedding=embedding, groups=groups, k=k, filters=filters,
                                                             version=version)]


def chunks_dense_scored(
    *, embedding: list[float], groups: list[str], k: int, filters: SearchFilters = NO_FILTERS,
    version: int | None = None, exact_scan: bool | None = None,
) -> list[tuple[int, float]]:
    """(id, cosine similarity) of the k chunks nearest to `embedding` among those the reader may see, nearest first.

    The ACL is a condition of the same query. With pgvector >= 0.8 the HNSW scan is
    iterative, so a selective ACL still yields k rows instead of fewer; older versions
    (the embedded pgserver has 0.6) scan ef_search candidates and may return fewer, and any
    version gives up after hnsw.max_scan_tuples. When the scan returns fewer than k, an
    exact scan answers instead, so fewer than k means fewer than k exist. A connector filter
    that leaves few chunks (RAG_EXACT_SCAN_MAX_CHUNKS) is ranked exactly from the start.
    `version`: the index version to search (default: the live one); `exact_scan`: that decision
    when the caller made it already (a hybrid search counts once for both sides).
    """
    if exact_scan is None:
        exact_scan = few_enough_to_scan(filters)
    if exact_scan:
        # A filter to a few chunks (one small source, pinned libraries, an assistant's sources):
        # the HNSW walk would skip the ~99% of neighbours outside them (over 100 ms at a million
        # chunks), while ranking the few exactly is a btree lookup and a short sort, with recall 1.
        rows = list(exact_order(visible_chunks(groups, filters, version), embedding)[:k])
        return [(chunk_id, 1.0 - distance) for chunk_id, distance in rows]
    nearest = (
        visible_chunks(groups, filters, version)
        .annotate(distance=CosineDistance(indexed_embedding(), embedding))
        .order_by("distance")
        .values_list("id", "distance")
    )
    statements = [f"SET LOCAL hnsw.ef_search = {int(max(settings.RAG_EF_SEARCH, k))}"]
    if pgvector_version() >= (0, 8):
        statements.append("SET LOCAL hnsw.iterative_scan = relaxed_order")
    rows = rows_with_settings(statements, *nearest[:k].query.sql_with_params())  # one round trip
    if len(rows) < k:
        # The approximate scan can stop early (hnsw.max_scan_tuples, a graph region full of
        # deleted rows not yet vacuumed, pgvector < 0.8): fewer than k rows is then not
        # proof that fewer exist. Ask again exactly (the visible chunks are found through the
        # ACL's GIN index, cheap when few are visible, which is when this happens).
        rows = list(exact_order(visible_chunks(groups, filters, version), embedding)[:k])
    # relaxed_order may return neighbours slightly out of order
    return [(chunk_id, 1.0 - distance) for chunk_id, distance in sorted(rows, key=lambda row: row[1])]


def exact_order(chunks, embedding: list[float]):
    """(id, cosine distance) of `chunks`, nearest first, ranked exactly by their float32 vectors.

    Ordered by `distance + 0`, an order no HNSW index can give (neither the halfvec one nor a
    float32 one): the planner finds the chunks through the filters' own indexes and sorts them."""
    return (
        chunks.filter(embedding__isnull=False)
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by(ExpressionWrapper(F("distance") + Value(0.0), output_field=FloatField()))
        .values_list("id", "distance")
    )
