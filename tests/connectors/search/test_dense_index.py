"""The dense search and its HNSW index: on embedding::halfvec (migration 0008), and the query
orders by the same expression, or PostgreSQL could not use the index at all."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.db import connection, transaction

from connectors.models import Chunk, Connector, Document
from connectors.search.dense import HALFVEC_INDEX, chunk_ids_dense, halfvec_index, pgvector_version
from connectors.search.local_settings import settings_and_query


@pytest.fixture
def vectors(db):
    """300 public chunks with random 384-dimensional vectors; their ids and vectors."""
    if pgvector_version() < (0, 7):
        pytest.skip("halfvec needs pgvector 0.7")
    connector = Connector.objects.create(name="Vectors", kind="folder", config={"path": "/nonexistent"}, is_public=True)
    rng = random.Random(11)
    documents = Document.objects.bulk_create(
        Document(connector=connector, external_id=f"d{i}", title=f"Doc {i}", text="x", content_hash="h",
                 acl_public=True, index_status="indexed")
        for i in range(300)
    )
    chunks = Chunk.objects.bulk_create(
        Chunk(document=doc, connector=connector, ordinal=0, text=f"chunk {i}", start_char=0, end_char=1, token_count=2,
              embedding=[rng.gauss(0, 1) for _ in range(384)], acl_public=True)
        for i, doc in enumerate(documents)
    )
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: the DDL below may run
        cursor.execute("ANALYZE connectors_chunk")  # the planner knows the table holds 300 rows
    halfvec_index.cache_clear()
    yield {chunk.id: np.array(chunk.embedding, dtype=np.float64) for chunk in chunks}, rng
    halfvec_index.cache_clear()


def dense_plan(query: list[float]) -> str:
    """EXPLAIN of the SQL chunk_ids_dense sends, with sequential and bitmap scans off: an HNSW
    index the query's ORDER BY matches is then used; one it does not match cannot be."""
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        chunk_ids_dense(embedding=query, groups=[], k=10)
    sent, params = next((sql, params) for sql, params in statements if "<=>" in sql)
    local_settings, sql = settings_and_query(sent)  # the search sends its SET LOCALs with its query
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("; ".join([*local_settings, "SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off"]))
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def exact_top(vectors: dict, query: list[float], k: int) -> list[int]:
    q = np.array(query)
    cosine = {cid: v @ q / (np.linalg.norm(v) * np.linalg.norm(q)) for cid, v in vectors.items()}
    return sorted(cosine, key=cosine.get, reverse=True)[:k]


def test_the_migrations_leave_one_hnsw_index_on_halfvec(vectors):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'connectors_chunk' "
                       "AND indexdef LIKE '%USING hnsw%'")
        rows = cursor.fetchall()
    assert [name for name, _ in rows] == [HALFVEC_INDEX]
    assert "halfvec(384)" in rows[0][1] and "halfvec_cosine_ops" in rows[0][1]


def test_the_dense_search_is_served_by_the_halfvec_index_and_finds_the_nearest(vectors):
    by_id, rng = vectors
    query = [rng.gauss(0, 1) for _ in range(384)]
    assert HALFVEC_INDEX in dense_plan(query)
    found = chunk_ids_dense(embedding=query, groups=[], k=10)
    # half precision may swap two near-equal neighbours, never lose the nearest ones
    assert len(set(found) & set(exact_top(by_id, query, 10))) >= 9
    assert found[0] == exact_top(by_id, query, 1)[0]


def test_a_database_that_kept_the_float32_index_is_searched_through_it(vectors):
    """Where pgvector predates halfvec, migration 0008 keeps the float32 index: the search must
    then order by the plain column, which that index serves."""
    by_id, rng = vectors
    query = [rng.gauss(0, 1) for _ in range(384)]
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX "{HALFVEC_INDEX}"')
        cursor.execute("CREATE INDEX chunk_embedding_hnsw ON connectors_chunk USING hnsw (embedding vector_cosine_ops)")
    halfvec_index.cache_clear()
    plan = dense_plan(query)
    assert "chunk_embedding_hnsw" in plan and HALFVEC_INDEX not in plan
    assert chunk_ids_dense(embedding=query, groups=[], k=10)[:1] == exact_top(by_id, query, 1)
