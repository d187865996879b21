"""Full-text ranking: BM25 in PostgreSQL, with the ACL and filters inside the query."""

from __future__ import annotations

import pytest
from django.db import connection

from connectors.search import bm25
from connectors.search.bm25 import chunk_search_vector, positive_lexemes
from connectors.models import Chunk, Connector, Document
from connectors.search import SearchFilters, chunks_search
from connectors.search.fulltext import chunk_ids_fulltext

VECTOR = [0.0] * 383 + [1.0]


@pytest.fixture(autouse=True)
def fresh_statistics():
    bm25.statistics_clear()
    yield
    bm25.statistics_clear()


def add_documents(connector, items, *, groups=(), public=True) -> list[Document]:
    """Documents of one chunk each, stored as the index stage stores them (title in the vector)."""
    documents = Document.objects.bulk_create(
        Document(connector=connector, external_id=f"{connector.name}-{Document.objects.count()}-{i}", title=title,
                 text=text, content_hash="h", acl_public=public, acl_groups=list(groups), index_status="indexed")
        for i, (title, text) in enumerate(items)
    )
    Chunk.objects.bulk_create(
        Chunk(document=doc, connector=connector, ordinal=0, text=doc.text, start_char=0, end_char=len(doc.text),
              token_count=len(doc.text.split()), embedding=VECTOR, acl_public=public, acl_groups=list(groups))
        for doc in documents
    )
    for doc in documents:
        vector = chunk_search_vector(title=doc.title, language="english")
        Chunk.objects.filter(document=doc).update(search_vector=vector)
    return documents


def found_titles(text, *, groups=(), k=10, filters=SearchFilters()) -> list[str]:
    ids = chunk_ids_fulltext(text=text, groups=list(groups), k=k, filters=filters)
    titles = dict(Chunk.objects.filter(id__in=ids).values_list("id", "document__title"))
    return [titles[i] for i in ids]


@pytest.fixture
def connector(db):
    return Connector.objects.create(name="Wiki", kind="folder", config={}, is_public=True)


def filler(n: int) -> list[tuple[str, str]]:
    """Pages full of everyday words: 'report', 'team' and 'quarter' are everywhere."""
    return [(f"Page {i}", f"The team report for the quarter {i}: the team met, the report was read.") for i in range(n)]


def test_a_rare_word_outranks_common_ones(connector):
    add_documents(connector, filler(40))
    add_documents(connector, [
        ("Memo", "Quarterly team report: the team report covers the quarter, and the team report is long."),
        ("Pharmacy", "Tamoxifen is stocked on the second floor."),
    ])
    # Without IDF the memo wins (three matching words, many times); with it the one rare word does.
    assert found_titles("team report tamoxifen quarter")[0] == "Pharmacy"


def test_more_occurrences_and_shorter_chunks_rank_higher(connector):
    add_documents(connector, filler(20))
    add_documents(connector, [
        ("Once", "Gearbox maintenance happens yearly, along with many other duties " + "and tasks " * 30),
        ("Twice", "Gearbox maintenance: check the gearbox oil."),
    ])
    assert found_titles("gearbox")[:2] == ["Twice", "Once"]


def test_the_title_is_searchable_in_every_chunk(connector):
    add_documents(connector, filler(5) + [("Expense policy", "Receipts are needed for anything above 20 euros.")])
    assert found_titles("expense")[0] == "Expense policy"


def test_a_quoted_phrase_and_a_minus_word_keep_their_meaning(connector):
    add_documents(connector, [
        ("Adjacent", "Check the grip pressure before each shift."),
        ("Apart", "Pressure on the grip is checked before each shift."),
        ("Conveyor", "Check the grip pressure of the conveyor."),
    ])
    assert sorted(found_titles('"grip pressure"')) == ["Adjacent", "Conveyor"]
    assert found_titles('"grip pressure" -conveyor') == ["Adjacent"]
    assert sorted(found_titles("grip pressure")) == ["Adjacent", "Apart", "Conveyor"]


def test_words_missing_from_the_index_do_not_block_the_others(connector):
    add_documents(connector, filler(3) + [("Parking", "Visitor parking is behind building C.")])
    assert found_titles("where is visitor parking xyzzyplugh")[0] == "Parking"
    assert found_titles("xyzzyplugh") == []
    assert found_titles("the of and") == []  # only stop words: nothing to rank


def test_a_reader_who_sees_one_percent_still_gets_k_results(connector, settings):
    """The ACL is a condition of the ranking query: the candidate limit applies to visible chunks."""
    settings.RAG_FULLTEXT_MAX_CANDIDATES = 50
    add_documents(connector, [(f"Hidden {i}", f"Weekly status update number {i}.") for i in range(2970)],
                  groups=["common"], public=False)
    add_documents(connector, [(f"Visible {i}", f"Status update for the restricted project, week {i}.")
                              for i in range(30)], groups=["rare"], public=False)
    # A rare word that only hidden chunks contain picks the candidates first; the fallback fills k.
    add_documents(connector, [(f"Secret {i}", "Status of Quasarline.") for i in range(5)], groups=["common"],
                  public=False)
    for query in ("status update", "status quasarline"):
        titles = found_titles(query, groups=["rare"], k=10)
        assert len(titles) == 10, query
        assert all(title.startswith("Visible") for title in titles), query


def test_filters_apply_inside_the_ranking_query(connector):
    other = Connector.objects.create(name="Other", kind="folder", config={}, is_public=True)
    add_documents(connector, [("Ours", "Fault code ZX-4471 on the gripper.")])
    add_documents(other, [("Theirs", "Fault code ZX-4471 on the conveyor.")])
    assert found_titles("ZX-4471", filters=SearchFilters(connector_ids=(other.id,))) == ["Theirs"]


def test_planner_statistics_give_the_same_ranking_as_exact_counts(connector, monkeypatch):
    add_documents(connector, filler(300))
    add_documents(connector, [
        ("Memo", "Quarterly team report: the team report covers the quarter."),
        ("Pharmacy", "Tamoxifen is stocked in the team room."),
        ("Pharmacy 2", "Tamoxifen and the quarter report."),
    ])
    query = "team report tamoxifen quarter"
    exact = found_titles(query)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE connectors_chunk")
    monkeypatch.setattr(bm25, "EXACT_STATISTICS_BELOW", 0)
    bm25.statistics_clear()
    assert found_titles(query) == exact
    stats = bm25.statistics_for(("team", "tamoxifen", "stock"), 1e9)
    assert stats.rows == 303
    assert stats.df["team"] == pytest.approx(303, rel=0.05)  # from pg_stats.most_common_elems
    assert stats.df["tamoxifen"] == pytest.approx(2, rel=0.05)
    add_documents(connector, [("New", "Stock levels and lorazepam.")])
    # Not among the common elements: counted through the GIN index, at once (not cached)
    assert bm25.statistics_for(("lorazepam",), 1e9).df["lorazepam"] == 1


def test_hybrid_search_fuses_the_bm25_ranking(connector):
    add_documents(connector, filler(10) + [("Pharmacy", "Tamoxifen is stocked on the second floor.")])
    hits = chunks_search(embedding=None, text="tamoxifen report", groups=[], k=3, mode="hybrid")
    assert hits[0].chunk.document.title == "Pharmacy"
    assert hits[0].fulltext_rank == 1


@pytest.mark.parametrize(
    ("tsquery", "expected"),
    [
        ("'grip' & 'pressur'", ["grip", "pressur"]),
        ("'grip' <-> 'pressur' & !'conveyor'", ["grip", "pressur"]),
        ("'a' & !( 'b' <-> 'c' ) & 'd'", ["a", "d"]),
        ("!!'twice'", ["twice"]),
        ("'it''s' | 'x':*", ["it's", "x"]),
        ("", []),
    ],
)
def test_positive_lexemes_of_a_tsquery(tsquery, expected):
    assert positive_lexemes(tsquery) == expected


def test_lexemes_are_quoted_safely_for_tsquery(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::tsquery::text", [bm25.tsquery_of(["it's", "back\\slash", "a|b"])])
        assert cursor.fetchone()[0] == "'it''s' | 'back\\\\slash' | 'a|b'"


def test_the_rarest_words_pick_the_candidates_within_the_budget():
    parsed = bm25.ParsedQuery(lexemes=("c2", "rare", "c1", "absent"), strict=())
    stats = bm25.Statistics(rows=100, avg_length=50, df={"rare": 1, "c1": 50, "c2": 80, "absent": 0})
    plan = bm25.plan_for(parsed, stats, budget=20)
    assert plan.terms == ("c2", "rare", "c1")  # a lexeme found nowhere is dropped
    assert plan.first == "'rare'" and plan.common == ("c1", "c2")
    assert plan.idf_of("rare") > plan.idf_of("c1") > plan.idf_of("c2") > 0
    wider = bm25.plan_for(parsed, stats, budget=60)
    assert wider.first == "'rare' | 'c1'" and wider.common == ("c2",)
    assert bm25.plan_for(parsed, stats, budget=0).first is None  # even the rarest is over the budget


def test_later_stages_only_look_where_the_top_k_can_still_change():
    plan = bm25.Plan(terms=("rare", "c1", "c2"), idfs=(5.0, 1.0, 0.8), first="'rare'", common=("c1", "c2"))
    assert bm25.later_stages(plan, threshold=2.0) == []  # 1.0 + 0.8 cannot reach the k-th score
    assert bm25.later_stages(plan, threshold=1.5) == ["( 'c1' & 'c2' )"]  # both common words needed
    assert bm25.later_stages(plan, threshold=0.5) == ["'c1' | 'c2'"]
    # Fewer than k found: chunks with both common words first, then with either.
    assert bm25.later_stages(plan, threshold=None) == ["( 'c1' & 'c2' )", "'c1' | 'c2'"]


def test_synced_chunks_carry_their_document_title(db, tmp_path):
    """The index stage puts the title into every chunk's search_vector (weight A)."""
    from connectors.models import SyncRun
    from connectors.sync import sync_run_execute

    corpus = tmp_path / "articles.jsonl"
    corpus.write_text(
        '{"_id": "1", "title": "Tamoxifen dosing", "text": "Take one tablet daily with water."}\n'
        '{"_id": "2", "title": "Canteen", "text": "Lunch is served from noon."}\n'
    )
    source = Connector.objects.create(name="Articles", kind="jsonl", config={"path": str(corpus)}, is_public=True)
    sync_run_execute(SyncRun.objects.create(connector=source).id)
    vector = Chunk.objects.get(document__external_id="1").search_vector
    assert "'tamoxifen':1A" in vector and "'tablet'" in vector
    assert found_titles("tamoxifen tablets") == ["Tamoxifen dosing"]


def ranked_and_sent(settings, exact_scan_max_chunks: int, filters) -> tuple[list[str], list[str]]:
    """The titles found for "quasarline team report" under `filters`, with RAG_EXACT_SCAN_MAX_CHUNKS
    set so, and the full-text queries sent to find them."""
    settings.RAG_EXACT_SCAN_MAX_CHUNKS = exact_scan_max_chunks
    bm25.statistics_clear()
    sent = []

    def capture(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        titles = found_titles("quasarline team report", k=10, filters=filters)
    return titles, [sql for sql in sent if "connectors_chunk.search_vector" in sql]


def test_a_filter_to_few_chunks_reads_them_for_common_words_and_ranks_the_same(connector, settings):
    """Under a filter to a few chunks (RAG_EXACT_SCAN_MAX_CHUNKS) the stages of common words match
    the filter's chunks in their rows instead of reading those words' posting lists over the whole
    table; the ranking is the same."""
    settings.RAG_FULLTEXT_MAX_CANDIDATES = 10  # 'team' and 'report' are over it: common words
    small = Connector.objects.create(name="Small", kind="folder", config={}, is_public=True)
    add_documents(connector, filler(60))
    add_documents(small, filler(12) + [("Quasar page", "The Quasarline team report.")])
    only_small = SearchFilters(connector_ids=(small.id,))

    through_rows, sent_few = ranked_and_sent(settings, 100, only_small)
    through_index, sent_walk = ranked_and_sent(settings, 0, only_small)
    assert through_rows == through_index and through_rows[0] == "Quasar page" and len(through_rows) == 10
    # the first stage (the rare word) keeps the GIN index; the later ones read the 13 chunks
    assert "@@" in sent_few[0] and all("ts_match_vq" in sql for sql in sent_few[1:]) and len(sent_few) > 1
    assert not any("ts_match_vq" in sql for sql in sent_walk)


def test_under_a_filter_to_few_chunks_the_common_words_stages_read_them_once(connector, settings):
    """When the chunks with two common words are too few for the top k, the chunks with one of
    them count too: under a filter to few chunks both stages come from one read of the filter's
    chunks (those with both words first), where the index path sends a query per stage; the
    ranking is the same."""
    settings.RAG_FULLTEXT_MAX_CANDIDATES = 10  # 'team' and 'report' are over it: common words
    small = Connector.objects.create(name="Small", kind="folder", config={}, is_public=True)
    add_documents(connector, filler(60))
    add_documents(small, [(f"Team {i}", f"The team met on day {i}.") for i in range(4)]
                  + [(f"Report {i}", f"A report was filed on day {i}.") for i in range(4)]
                  + [("Both", "The team report."), ("Quasar page", "The Quasarline team report.")])
    only_small = SearchFilters(connector_ids=(small.id,))

    through_rows, sent_few = ranked_and_sent(settings, 100, only_small)
    through_index, sent_walk = ranked_and_sent(settings, 0, only_small)
    assert through_rows == through_index and through_rows[:2] == ["Quasar page", "Both"] and len(through_rows) == 10
    assert len(sent_walk) == 3  # the rare word, then two words, then one: a query each
    assert len(sent_few) == 2 and "@@" in sent_few[0] and "ts_match_vq" in sent_few[1]
