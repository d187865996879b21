"""A search filtered to a source that holds few chunks ranks them exactly (RAG_EXACT_SCAN_MAX_CHUNKS):
the HNSW walk would skip almost every neighbour it meets there. A broad search keeps the index."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.db import connection, transaction

from connectors.models import Chunk, Connector, Document
from connectors.search import NO_FILTERS, SearchFilters, chunks_search
from connectors.search.dense import HALFVEC_INDEX, chunks_dense_scored, halfvec_index, pgvector_version
from connectors.search.local_settings import settings_and_query


def add_chunks(connector: Connector, count: int, rng: random.Random, *, public: bool, groups=()) -> dict:
    prefix = "-".join(groups) or "public"
    documents = Document.objects.bulk_create(
        Document(connector=connector, external_id=f"{prefix}-{i}", title=f"{connector.name} {i}", text="x",
                 content_hash="h", acl_public=public, acl_groups=list(groups), index_status="indexed")
        for i in range(count)
    )
    chunks = Chunk.objects.bulk_create(
        Chunk(document=doc, connector=connector, ordinal=0, text=f"chunk {i}", start_char=0, end_char=1,
              token_count=2, embedding=[rng.gauss(0, 1) for _ in range(384)], acl_public=public,
              acl_groups=list(groups))
        for i, doc in enumerate(documents)
    )
    return {chunk.id: np.array(chunk.embedding, dtype=np.float64) for chunk in chunks}


@pytest.fixture
def sources(db, settings):
    """A large public source (260 chunks) and a small restricted one (40 chunks, 30 for the group
    'rare', 10 for 'hr'); the exact-scan limit at 100 chunks."""
    if pgvector_version() < (0, 7):
        pytest.skip("halfvec needs pgvector 0.7")
    settings.RAG_EXACT_SCAN_MAX_CHUNKS = 100
    rng = random.Random(17)
    large = Connector.objects.create(name="Large", kind="folder", config={"path": "/nonexistent"}, is_public=True)
    small = Connector.objects.create(name="Small", kind="folder", config={"path": "/nonexistent"})
    vectors = {
        "large": add_chunks(large, 260, rng, public=True),
        "rare": add_chunks(small, 30, rng, public=False, groups=["rare"]),
        "hr": add_chunks(small, 10, rng, public=False, groups=["hr"]),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ANALYZE connectors_chunk")
    halfvec_index.cache_clear()
    yield {"large": large, "small": small, "vectors": vectors, "rng": rng}
    halfvec_index.cache_clear()


def exact_top(vectors: dict, query: list[float], k: int) -> list[int]:
    q = np.array(query)
    cosine = {cid: v @ q / (np.linalg.norm(v) * np.linalg.norm(q)) for cid, v in vectors.items()}
    return sorted(cosine, key=cosine.get, reverse=True)[:k]


def sent_statements(function) -> list[tuple[str, tuple]]:
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        function()
    return statements


def ranking_plan(filters: SearchFilters, query: list[float]) -> str:
    """EXPLAIN of the ranking query the dense search sends, with sequential and bitmap scans and
    sorts off (on 300 rows the planner would otherwise sort them whatever the query): an HNSW index
    the ORDER BY matches is then used; with an order it does not match it cannot be."""
    statements = sent_statements(lambda: chunks_dense_scored(embedding=query, groups=["rare"], k=10, filters=filters))
    sent, params = next((sql, params) for sql, params in statements if "<=>" in sql)
    local_settings, sql = settings_and_query(sent)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("; ".join([*local_settings, "SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off",
                                  "SET LOCAL enable_sort = off"]))
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_search_of_a_small_source_returns_the_exact_top_10_the_reader_may_see(sources):
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    only_small = SearchFilters(connector_ids=(sources["small"].id,))
    found = chunks_dense_scored(embedding=query, groups=["rare"], k=10, filters=only_small)
    # the same ten, in the same order, as an exact ranking of what 'rare' may see there (not hr's)
    assert [chunk_id for chunk_id, _ in found] == exact_top(sources["vectors"]["rare"], query, 10)
    best_id, best_similarity = found[0]
    vector = sources["vectors"]["rare"][best_id]
    assert best_similarity == pytest.approx(vector @ query / (np.linalg.norm(vector) * np.linalg.norm(query)),
                                            abs=1e-5)


def test_a_small_source_is_ranked_without_the_hnsw_index_and_a_large_one_through_it(sources):
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    small_plan = ranking_plan(SearchFilters(connector_ids=(sources["small"].id,)), query)
    assert "hnsw" not in small_plan.lower() and "Sort" in small_plan
    large_plan = ranking_plan(SearchFilters(connector_ids=(sources["large"].id,)), query)
    assert HALFVEC_INDEX in large_plan


def test_sources_searched_together_count_together(sources, settings):
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    both_small = SearchFilters(connector_ids=(sources["small"].id,))
    assert HALFVEC_INDEX not in ranking_plan(both_small, query)
    settings.RAG_EXACT_SCAN_MAX_CHUNKS = 39  # the small source holds 40 chunks, all readers counted
    assert HALFVEC_INDEX in ranking_plan(both_small, query)
    settings.RAG_EXACT_SCAN_MAX_CHUNKS = 300  # both sources: 300 chunks
    assert HALFVEC_INDEX not in ranking_plan(
        SearchFilters(connector_ids=(sources["small"].id, sources["large"].id)), query)


def test_the_broad_search_walks_the_index_without_counting(sources):
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    statements = sent_statements(lambda: chunks_dense_scored(embedding=query, groups=["rare"], k=10))
    chunk_queries = [sql for sql, _ in statements if '"connectors_chunk"' in sql]
    assert len(chunk_queries) == 1 and "hnsw.ef_search" in chunk_queries[0] and "count(" not in chunk_queries[0].lower()
    assert HALFVEC_INDEX in ranking_plan(NO_FILTERS, query)


def test_a_limit_of_zero_keeps_the_index_for_every_search(sources, settings):
    settings.RAG_EXACT_SCAN_MAX_CHUNKS = 0
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    assert HALFVEC_INDEX in ranking_plan(SearchFilters(connector_ids=(sources["small"].id,)), query)


def test_the_hybrid_search_of_a_small_source_stays_inside_it(sources):
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    hits = chunks_search(embedding=query, text="chunk", groups=["rare"], k=5, mode="hybrid",
                         filters=SearchFilters(connector_ids=(str(sources["small"].id),)))
    assert len(hits) == 5
    assert {hit.chunk.id for hit in hits} <= set(sources["vectors"]["rare"])


def test_counting_a_sources_chunks_reads_the_connector_index_only(sources):
    """The count that picks the path must not sort the source's chunks (Chunk's default
    ordering) nor read their rows: an index-only scan, stopped one past the limit."""
    query = [sources["rng"].gauss(0, 1) for _ in range(384)]
    statements = sent_statements(lambda: chunks_dense_scored(
        embedding=query, groups=["rare"], k=10, filters=SearchFilters(connector_ids=(sources["large"].id,))))
    count_sql, params = next((sql, params) for sql, params in statements if sql.startswith("SELECT count(*)"))
    assert "ORDER BY" not in count_sql and "LIMIT 101" in count_sql
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + count_sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan" in plan and "Sort" not in plan


def test_a_chunks_groups_stay_in_its_row(db):
    """Migration 0010: acl_groups is checked for every candidate a search is not sure of; out of
    line (TOAST) each check would be an index lookup and another page."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'connectors_chunk'::regclass "
                       "AND attname IN ('acl_groups', 'embedding', 'search_vector')")
        assert dict(cursor.fetchall()) == {"acl_groups": "m", "embedding": "m", "search_vector": "m"}
