"""Hybrid search: vectors and full text fused by RRF, with the ACL inside the query."""

from __future__ import annotations

import random

import pytest
from django.db.models.expressions import RawSQL

from assistant.rag.retrieval import embed_query, retrieve
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.search import SearchFilters, chunks_search
from connectors.search.dense import chunk_ids_dense, pgvector_version
from connectors.sync import sync_run_execute
from tests.folders import folder_synced


KB_PAGES = {
    "errors.md": "# Controller faults\n\nFault code ZX-4471 means the gripper lost air pressure.\n",
    "lunch.md": "# Lunch\n\nThe cafeteria offers warm meals and salads at midday.\n",
    "trains.md": "# Travel\n\nBook rail journeys through the travel desk two weeks ahead.\n",
}


def synced_kb(root, pages: dict[str, str]) -> Connector:
    """A public folder connector "KB" holding `pages`, synced."""
    return folder_synced(root, pages, name="KB")


@pytest.fixture
def handbook(db, tmp_path):
    return synced_kb(tmp_path / "kb", KB_PAGES)


def titles(passages) -> list[str]:
    return [p.title for p in passages]


def test_fulltext_finds_an_exact_code_that_has_no_meaning_for_vectors(handbook):
    query = "ZX-4471"
    assert titles(retrieve(embedding=None, query=query, groups=[], k=1, mode="fulltext")) == ["Controller faults"]
    assert titles(retrieve(embedding=embed_query(query), query=query, groups=[], k=1, mode="hybrid")) == [
        "Controller faults"
    ]


def test_dense_finds_by_meaning_without_shared_words(handbook):
    query = "where can I eat at noon?"
    assert titles(retrieve(embedding=embed_query(query), query=query, groups=[], k=1, mode="dense")) == ["Lunch"]
    assert titles(retrieve(embedding=embed_query(query), query=query, groups=[], k=1))[0] == "Lunch"


def test_hybrid_fuses_both_lists_by_reciprocal_rank(handbook, settings):
    settings.RAG_FUSION, settings.RAG_FUSION_LEVEL, settings.RAG_FUSION_DOCUMENT_CHUNKS = "rrf", "chunk", 1
    query = "train tickets booking"
    hits = chunks_search(embedding=embed_query(query), text=query, groups=[], k=3, mode="hybrid")
    top = hits[0]
    assert top.chunk.document.title == "Travel"
    expected = sum(
        weight / (settings.RAG_RRF_K + rank)
        for weight, rank in ((settings.RAG_DENSE_WEIGHT, top.dense_rank), (settings.RAG_FULLTEXT_WEIGHT, top.fulltext_rank))
        if rank is not None
    )
    assert top.score == pytest.approx(expected)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("method", ["rrf", "minmax", "dbsf", "borda"])
def test_document_fusion_keeps_a_documents_chunks_together_at_its_score(db, tmp_path, settings, method):
    long_page = "# Printers\n\n" + "\n\n".join(
        f"Paragraph {n} about printer queues, CUPS drivers and toner number {n}. " * 12 for n in range(8)
    )
    synced_kb(tmp_path / "kb", {**KB_PAGES, "printers.md": long_page})
    settings.RAG_FUSION, settings.RAG_FUSION_LEVEL = method, "document"
    query = "how do I add a printer queue with CUPS?"
    hits = chunks_search(embedding=embed_query(query), text=query, groups=[], k=20, mode="hybrid")
    documents = [hit.chunk.document.title for hit in hits]
    assert documents[0] == "Printers" and documents.count("Printers") > 1
    first_other = next(i for i, title in enumerate(documents) if title != "Printers")
    assert set(documents[first_other:]).isdisjoint({"Printers"})  # one document's chunks are adjacent
    assert len({hit.score for hit in hits[:first_other]}) == 1  # each scores as its document
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_a_filter_restricts_results_to_a_connector(handbook, tmp_path):
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "faults.md").write_text("# More faults\n\nFault code ZX-4471 also appears on the conveyor.\n")
    other = Connector.objects.create(name="Other", kind="folder", config={"path": str(other_dir)}, is_public=True)
    sync_run_execute(SyncRun.objects.create(connector=other).id)
    only_other = SearchFilters(connector_ids=(other.id,))
    found = retrieve(embedding=embed_query("ZX-4471"), query="ZX-4471", groups=[], k=5, filters=only_other)
    assert titles(found) == ["More faults"]


@pytest.fixture
def pgvector_08(db):
    if pgvector_version() < (0, 8):
        pytest.skip("iterative index scans need pgvector 0.8")


def test_a_user_who_sees_one_percent_of_chunks_still_gets_k_results(pgvector_08):
    """The ACL is part of the HNSW query: no post-filter that starves the result list."""
    connector = Connector.objects.create(name="Big", kind="folder", config={"path": "/nonexistent"})
    rng = random.Random(7)
    chunks = []
    for i in range(3000):
        visible = i % 100 == 0  # 30 of 3,000 chunks
        doc = Document(connector=connector, external_id=f"d{i}", title=f"Doc {i}", text="x", content_hash="h",
                       acl_groups=["rare"] if visible else ["common"], index_status="indexed")
        chunks.append((doc, [rng.gauss(0, 1) for _ in range(384)]))
    Document.objects.bulk_create([doc for doc, _ in chunks])
    Chunk.objects.bulk_create(
        Chunk(document=doc, connector=connector, ordinal=0, text=f"chunk {doc.external_id}", start_char=0, end_char=1,
              token_count=2, embedding=vector, acl_groups=doc.acl_groups)
        for doc, vector in chunks
    )
    query = [rng.gauss(0, 1) for _ in range(384)]
    ids = chunk_ids_dense(embedding=query, groups=["rare"], k=10)
    assert len(ids) == 10
    assert all(groups == ["rare"] for groups in Chunk.objects.filter(id__in=ids).values_list("acl_groups", flat=True))


def test_the_optional_reranker_reorders_the_fused_candidates(handbook, settings, monkeypatch):
    from assistant.rag import retrieval

    class ReverseAlphabetical:
        def scores(self, query, documents):
            return [-ord(text.lstrip("# ")[0]) for text in documents]  # "Controller" < "Lunch" < "Travel"

    monkeypatch.setattr(retrieval, "get_reranker", lambda: ReverseAlphabetical())
    query = "meals"
    passages = retrieve(embedding=embed_query(query), query=query, groups=[], k=3)
    assert titles(passages)[0] == "Controller faults"


def test_without_a_reranker_url_the_stage_is_off(settings):
    from assistant.rag import retrieval

    retrieval.get_reranker.cache_clear()
    settings.RAG_RERANK_URL = ""
    assert retrieval.get_reranker() is None


def test_an_index_scan_that_gives_up_early_is_answered_exactly(pgvector_08, settings):
    """An HNSW scan that stops before finding k visible chunks must not shorten the answer."""
    from django.db import connection

    settings.RAG_EF_SEARCH = 10
    connector = Connector.objects.create(name="Big", kind="folder", config={"path": "/nonexistent"})
    rng = random.Random(11)
    docs = [
        Document(connector=connector, external_id=f"d{i}", title=f"Doc {i}", text="x", content_hash="h",
                 acl_groups=["rare"] if i % 100 == 0 else ["common"], index_status="indexed")
        for i in range(2000)
    ]
    Document.objects.bulk_create(docs)
    vectors = [[rng.gauss(0, 1) for _ in range(384)] for _ in docs]
    Chunk.objects.bulk_create(
        Chunk(document=doc, connector=connector, ordinal=0, text="c", start_char=0, end_char=1, token_count=1,
              embedding=vector, acl_groups=doc.acl_groups)
        for doc, vector in zip(docs, vectors)
    )
    query = [rng.gauss(0, 1) for _ in range(384)]

    def cosine_distance(v):
        dot = sum(a * b for a, b in zip(query, v))
        return 1 - dot / (sum(a * a for a in query) ** 0.5 * sum(b * b for b in v) ** 0.5)

    rare = sorted((cosine_distance(v), doc.id) for doc, v in zip(docs, vectors) if doc.acl_groups == ["rare"])
    expected_docs = [doc_id for _, doc_id in rare[:10]]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE connectors_chunk")
        # the HNSW scan is used; its first pass (ef_search = k) finds about 1% of k visible, and
        # its iterative continuation gives up at once
        cursor.execute("SET enable_seqscan = off; SET enable_bitmapscan = off; SET hnsw.max_scan_tuples = 1")
    try:
        ids = chunk_ids_dense(embedding=query, groups=["rare"], k=10)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan; RESET enable_bitmapscan; RESET hnsw.max_scan_tuples")
    found_docs = list(Chunk.objects.filter(id__in=ids).values_list("document_id", flat=True))
    assert sorted(found_docs) == sorted(expected_docs)


@pytest.fixture
def committed_handbook(transactional_db, tmp_path):
    return synced_kb(tmp_path / "kb", {name: KB_PAGES[name] for name in ("errors.md", "lunch.md")})


def _ranks(query: str) -> list[tuple[str, int | None, int | None]]:
    hits = chunks_search(embedding=embed_query(query), text=query, groups=[], k=2, mode="hybrid")
    return [(h.chunk.document.title, h.dense_rank, h.fulltext_rank) for h in hits]


def test_the_full_text_side_on_its_own_connection_finds_the_same_as_in_turn(committed_handbook, settings):
    settings.RAG_PARALLEL_SIDES = True
    side_by_side = _ranks("fault ZX-4471")
    settings.RAG_PARALLEL_SIDES = False
    in_turn = _ranks("fault ZX-4471")
    assert side_by_side == in_turn
    assert side_by_side[0][0] == "Controller faults" and side_by_side[0][2] == 1  # the full-text side counted


def test_a_side_connection_the_database_dropped_is_replaced(committed_handbook, settings):
    from django.db import connection

    from connectors.search.hybrid import _side_executor

    settings.RAG_PARALLEL_SIDES = True
    _ranks("fault ZX-4471")  # the side threads now hold connections

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    pids = {_side_executor().submit(backend_pid).result() for _ in range(8)}
    with connection.cursor() as cursor:  # what a database restart does to them
        cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(pids)])
    for _ in range(3):
        assert _ranks("fault ZX-4471")[0][:3:2] == ("Controller faults", 1)


def test_inside_a_transaction_both_sides_see_its_own_writes(committed_handbook, settings, tmp_path):
    from django.db import transaction

    settings.RAG_PARALLEL_SIDES = True
    with transaction.atomic():
        Document.objects.filter(connector=committed_handbook).update(title="Renamed")
        Chunk.objects.filter(text__contains="ZX-4471").update(text="Fault code QQ-9182 means low pressure.")
        Chunk.objects.filter(text__contains="QQ-9182").update(
            search_vector=RawSQL("to_tsvector('english', text)", [])
        )
        hits = chunks_search(embedding=embed_query("QQ-9182"), text="QQ-9182", groups=[], k=1, mode="hybrid")
        assert hits and hits[0].fulltext_rank == 1
        transaction.set_rollback(True)
