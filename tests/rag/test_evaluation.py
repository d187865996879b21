"""Evaluation: metric definitions against hand-computed values, the JSON Lines source, baseline
gating, and `manage.py evaluate` end to end on tiny data sets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from assistant.rag import evaluation as ev
from connectors.models import Connector, Document, SyncRun
from connectors.sources.base import ItemFailure, SourceDocument, SourceError
from connectors.sources.jsonl import JsonlSource
from connectors.sources.registry import SOURCES, build_source
from connectors.sync import sync_run_execute

# --- retrieval metrics -----------------------------------------------------------------------------

QRELS = {
    "q1": {"a": 2, "b": 1, "z": 0},  # graded; z judged not relevant
    "q2": {"c": 1},
    "q3": {"d": 1},  # nothing retrieved for it
}
RUN = {
    "q1": ["b", "x", "a"],
    "q2": ["x", "y", "c"],
}


def test_ndcg_uses_graded_gain_and_log2_discount():
    # DCG = 1/log2(2) + 0 + 2/log2(4) = 2; ideal = 2/log2(2) + 1/log2(3)
    assert ev.ndcg_at_k(RUN["q1"], QRELS["q1"], 10) == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert ev.ndcg_at_k(RUN["q2"], QRELS["q2"], 10) == pytest.approx(0.5)
    assert ev.ndcg_at_k(RUN["q2"], QRELS["q2"], 2) == 0.0
    assert ev.ndcg_at_k(["a", "b"], QRELS["q1"], 10) == pytest.approx(1.0)


def test_recall_counts_relevant_documents_in_the_top_k():
    assert ev.recall_at_k(RUN["q1"], QRELS["q1"], 2) == 0.5
    assert ev.recall_at_k(RUN["q1"], QRELS["q1"], 3) == 1.0
    assert ev.recall_at_k([], QRELS["q3"], 10) == 0.0


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_document():
    assert ev.mrr_at_k(RUN["q1"], QRELS["q1"], 10) == 1.0
    assert ev.mrr_at_k(RUN["q2"], QRELS["q2"], 10) == pytest.approx(1 / 3)
    assert ev.mrr_at_k(RUN["q2"], QRELS["q2"], 2) == 0.0
    assert ev.mrr_at_k(["z", "a"], QRELS["q1"], 10) == 0.5  # relevance 0 is not relevant


def test_chunks_of_one_document_count_once_at_their_best_rank():
    assert ev.unique(["b", "b", "x", "b", "a"]) == ["b", "x", "a"]
    assert ev.ndcg_at_k(["b", "b", "x", "a"], QRELS["q1"], 10) == ev.ndcg_at_k(RUN["q1"], QRELS["q1"], 10)


def test_evaluate_run_averages_over_every_judged_query():
    scores = ev.evaluate_run(RUN, QRELS)
    assert set(scores) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert scores["ndcg@10"] == pytest.approx((2 / (2 + 1 / math.log2(3)) + 0.5 + 0) / 3)
    assert scores["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert scores["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)


# --- answer metrics -------------------------------------------------------------------------------


def test_normalisation_drops_case_punctuation_articles_and_extra_spaces():
    assert ev.normalize_answer("The  Cat, sat on a mat!") == "cat sat on mat"
    assert ev.normalize_answer("An apple.") == "apple"
    assert ev.normalize_answer("theory") == "theory"  # articles only as whole words


def test_exact_match_after_normalisation():
    assert ev.exact_match("The Apple.", "apple") == 1.0
    assert ev.exact_match("Yes.", "yes") == 1.0
    assert ev.exact_match("apples", "apple") == 0.0


def test_token_f1_counts_shared_tokens():
    # pred: quick brown fox / gold: brown fox jumped -> p = r = 2/3
    assert ev.token_f1("a quick brown fox", "the brown fox jumped") == pytest.approx(2 / 3)
    assert ev.token_f1("nothing here", "brown fox") == 0.0
    assert ev.token_f1("the", "a") == 1.0  # both empty after normalisation


def test_answer_scores_strip_citation_markers_and_take_the_best_gold():
    assert ev.strip_citations("Yes [1]. It was in 1861 [2, 3].") == "Yes. It was in 1861."
    scores = ev.answer_scores("Yes [1].", ["no", "Yes"])
    assert scores == {"exact_match": 1.0, "f1": 1.0, "contains_answer": 1.0}
    long = ev.answer_scores("Yes, Lincoln was the sixteenth president [1].", "Yes.")
    assert long["exact_match"] == 0.0 and long["contains_answer"] == 1.0 and 0 < long["f1"] < 1


def test_citations_are_valid_only_when_they_point_into_given_passages():
    given = {1: [11, 21], 2: [12]}  # passage 1 is made of two chunks (a whole document)
    assert ev.citations_valid([{"n": 1, "chunk_ids": [21]}, {"n": 2, "chunk_ids": [12]}], given)
    assert ev.citations_valid([], given)
    assert not ev.citations_valid([{"n": 3, "chunk_ids": [13]}], given)
    assert not ev.citations_valid([{"n": 1, "chunk_ids": [12]}], given)
    assert not ev.citations_valid([{"n": 2, "chunk_ids": []}], given)


# --- baselines ----------------------------------------------------------------------------------------


def test_compare_flags_drops_beyond_the_tolerance_and_missing_metrics():
    baseline = {"metrics": {"hybrid": {"ndcg@10": 0.70, "mrr@10": 0.65}, "dense": {"ndcg@10": 0.64}}}
    results = {"metrics": {"hybrid": {"ndcg@10": 0.685, "mrr@10": 0.60}}}
    regressions = ev.compare(results, baseline, tolerance=0.02)
    assert [(r.metric, r.current) for r in regressions] == [("dense.ndcg@10", None), ("hybrid.mrr@10", 0.60)]
    assert regressions[1].drop == pytest.approx(0.05)
    assert "hybrid.mrr@10" in str(regressions[1])
    assert ev.compare(baseline, baseline, tolerance=0.0) == []
    assert ev.compare({"metrics": {"x": 0.68}}, {"metrics": {"x": 0.70}}, tolerance=0.02) == []  # exactly at it


# --- the JSON Lines source -----------------------------------------------------------------------------


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "export.jsonl"
    lines = [
        json.dumps({"_id": "a", "title": "Alpha", "text": "First text.", "team": "red", "secret": "x"}),
        "",
        "{not json",
        json.dumps({"_id": 7, "title": "  Seven \n days ", "text": "Seventh."}),
        json.dumps({"title": "No id", "text": "orphan"}),
        json.dumps({"_id": "a", "text": "duplicate"}),
        json.dumps(["a", "list"]),
        json.dumps({"_id": "c", "title": "No text"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_source_yields_documents_and_names_bad_lines(export):
    assert SOURCES["jsonl"] is JsonlSource and JsonlSource.label == "JSON Lines file"
    source = build_source("jsonl", {"path": str(export), "metadata_fields": ["team"]})
    items = list(source.iter_documents())
    documents = [i for i in items if isinstance(i, SourceDocument)]
    failures = {i.external_id: i.reason for i in items if isinstance(i, ItemFailure)}
    assert [(d.external_id, d.title, d.text) for d in documents] == [("a", "Alpha", "First text."), ("7", "Seven days", "Seventh.")]
    first = documents[0]
    assert first.media_type == "text/plain" and first.location == f"{export}#a" and first.metadata == {"team": "red"}
    assert set(failures) == {"line 3", "line 5", "line 6", "line 7", "line 8"}
    assert "not valid JSON" in failures["line 3"] and "'_id'" in failures["line 5"]
    assert "line 1" in failures["line 6"]  # the duplicate names where the id was first used
    assert source.list_ids() == {"a", "7", "c"}
    assert source.estimated_total() == 7  # non-blank lines
    assert "7 lines" in source.check()


def test_jsonl_source_reads_other_field_names(tmp_path):
    path = tmp_path / "tickets.jsonl"
    path.write_text(json.dumps({"key": "T-1", "subject": "Printer", "body": "It jams."}) + "\n")
    source = build_source("jsonl", {"path": str(path), "id_field": "key", "title_field": "subject", "text_field": "body"})
    [item] = list(source.iter_documents())
    assert (item.external_id, item.title, item.text) == ("T-1", "Printer", "It jams.")


def test_jsonl_source_rejects_relative_paths_and_reports_a_missing_file(tmp_path):
    with pytest.raises(SourceError, match="absolute"):
        build_source("jsonl", {"path": "exports/a.jsonl"})
    with pytest.raises(SourceError, match="does not exist"):
        build_source("jsonl", {"path": str(tmp_path / "gone.jsonl")}).check()


def test_a_jsonl_connector_syncs_through_the_engine(db, export):
    connector = Connector.objects.create(name="Export", kind="jsonl", config={"path": str(export)}, is_public=True)
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.failed == 5  # lines 3, 5 (no id), 6 (duplicate), 7 (a list), 8 (no text)
    docs = dict(Document.objects.filter(connector=connector).values_list("external_id", "index_status"))
    assert docs == {"a": "indexed", "7": "indexed"}
    again = SyncRun.objects.create(connector=connector)
    sync_run_execute(again.id)
    again.refresh_from_db()
    assert (again.added, again.unchanged) == (0, 2)


# --- manage.py evaluate ----------------------------------------------------------------------------------

CORPUS = [
    ("d1", "Aspirin and heart attacks", "Daily low-dose aspirin reduces the risk of a first heart attack in older adults."),
    ("d2", "Vitamin D and bones", "Vitamin D supplements improve bone mineral density in postmenopausal women."),
    ("d3", "Coffee consumption", "Drinking coffee is associated with a lower risk of type 2 diabetes."),
    ("d4", "Sleep and memory", "Deep sleep consolidates memories formed during the day in the hippocampus."),
    ("d5", "Exercise and mood", "Regular aerobic exercise reduces symptoms of depression in adults."),
    ("d6", "Antibiotic resistance", "Overuse of antibiotics drives the spread of resistant bacteria in hospitals."),
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def tiny_beir(tmp_path):
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, t, x in CORPUS])
    write_jsonl(root / "queries.jsonl", [
        {"_id": "q1", "text": "does aspirin prevent heart attacks?"},
        {"_id": "q2", "text": "sleep and memory consolidation"},
        {"_id": "q3", "text": "antibiotic overuse and resistant bacteria"},
        {"_id": "q9", "text": "a query without judgements"},
    ])
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\nq3\td6\t1\n")
    return root


def test_evaluate_retrieval_reports_every_mode_and_gates_on_a_baseline(db, tiny_beir, tmp_path, capsys):
    out = tmp_path / "report.json"
    call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--json-out", str(out),
                 "--save-baseline", str(tmp_path / "baseline.json"))
    report = json.loads(out.read_text())
    assert report["kind"] == "retrieval" and report["dataset"] == "tiny" and report["queries"] == 3
    assert set(report["metrics"]) == {"dense", "fulltext", "hybrid"}
    for mode in report["metrics"].values():
        assert set(mode) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert report["metrics"]["hybrid"]["ndcg@10"] >= 0.9  # the obviously relevant abstract ranks first
    assert report["metrics"]["hybrid"]["recall@100"] == 1.0
    assert report["corpus"]["documents_indexed"] == 6 and report["corpus"]["added"] == 6
    assert {"ingest_s", "embed_queries_s", "search", "total_s"} <= set(report["timing"])
    printed = capsys.readouterr().out
    assert "ndcg@10" in printed and '"metrics"' in printed
    assert not Connector.objects.filter(name="evaluation: tiny").exists()  # removed without --keep

    # The same data against the saved baseline passes; a better baseline fails with status 1.
    call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--modes", "hybrid,dense,fulltext",
                 "--baseline", str(tmp_path / "baseline.json"), "--keep", "--progress-seconds", "0")
    better = json.loads((tmp_path / "baseline.json").read_text())
    better["metrics"]["hybrid"]["mrr@10"] = 1.5
    (tmp_path / "better.json").write_text(json.dumps(better))
    with pytest.raises(CommandError, match="hybrid.mrr@10") as failed:
        call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--modes", "hybrid",
                     "--baseline", str(tmp_path / "better.json"), "--tolerance", "0.02", "--keep",
                     "--json-out", str(out))
    assert failed.value.returncode == 1
    rerun = json.loads(out.read_text())
    assert (rerun["corpus"]["added"], rerun["corpus"]["unchanged"]) == (0, 6)  # the kept connector was reused


def test_evaluate_retrieval_reads_a_folder_of_documents_with_their_structure(db, settings, tiny_beir, tmp_path):
    """corpus/ instead of corpus.jsonl: files read by the product's parsers, headings included."""
    (tiny_beir / "corpus.jsonl").unlink()
    (tiny_beir / "corpus").mkdir()
    for doc_id, title, text in CORPUS:
        (tiny_beir / "corpus" / f"{doc_id}.md").write_text(f"# Health notes\n\n## {title}\n\n{text}\n")
    (tiny_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1.md\t1\nq2\td4.md\t1\n")
    settings.CONNECTOR_DATA_DIR = [str(tmp_path)]
    out = tmp_path / "report.json"
    call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--modes", "fulltext", "--json-out", str(out),
                 "--set", "CHUNK_CONTEXT=title", "--progress-seconds", "0")
    report = json.loads(out.read_text())
    assert report["corpus"]["documents_indexed"] == 6
    assert report["metrics"]["fulltext"]["recall@10"] == 1.0
    assert report["settings"]["chunk_context"] == "title" and "context=title " in report["settings"]["embedded_text"]


def test_evaluate_retrieval_refuses_a_bad_chunk_context_before_ingesting(db, tiny_beir):
    with pytest.raises(CommandError, match="CHUNK_CONTEXT must be 'none' or a comma-separated list"):
        call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--set", "CHUNK_CONTEXT=sections")
    assert not Connector.objects.filter(name="evaluation: tiny").exists()


def test_evaluate_retrieval_refuses_a_directory_that_is_not_beir(db, tmp_path):
    with pytest.raises(CommandError, match="corpus.jsonl"):
        call_command("evaluate", "retrieval", "--beir", str(tmp_path))


@pytest.mark.llm
def test_evaluate_answers_asks_through_the_chat_pipeline(db, use_llm, tmp_path):
    corpus = write_jsonl(tmp_path / "docs.jsonl", [{"_id": i, "title": t, "text": x} for i, t, x in CORPUS])
    qa = write_jsonl(tmp_path / "qa.jsonl", [
        {"question": "What does daily low-dose aspirin reduce?", "answer": "the risk of a first heart attack",
         "doc_id": "d1"},
        {"question": "What drives the spread of resistant bacteria in hospitals?", "answer": "Overuse of antibiotics",
         "doc_id": "d6"},
    ])
    out = tmp_path / "answers.json"
    call_command("evaluate", "answers", "--corpus", str(corpus), "--qa", str(qa), "--limit", "2",
                 "--llm-url", use_llm["base_url"], "--llm-model", use_llm["model"], "--max-tokens", "96",
                 "--json-out", str(out), "--progress-seconds", "0")
    report = json.loads(out.read_text())
    assert report["kind"] == "answers" and report["questions"] == 2
    assert set(report["metrics"]) == {
        "source_hit", "source_hit_title", "retrieval_hit", "exact_match", "f1", "contains_answer", "citation_validity"
    }
    assert {"median_s", "p90_s", "median_first_token_ms"} <= set(report["latency"])
    assert report["counts"]["questions"] == 2
    for item in report["items"]:
        assert item["source_hit"] in (0.0, 1.0)
        assert item["source_hit"] == float(item["gold_doc_id"] in item["cited_documents"])
        assert item["source_hit_title"] >= item["source_hit"]
        assert item["retrieval_hit"] == 1.0  # six documents: the gold one is among the passages
        assert item["citations_valid"] is True  # the pipeline keeps only citations of given passages
    assert report["metrics"]["retrieval_hit"] == 1.0
    assert report["settings"]["llm_base_url"] == use_llm["base_url"]
    assert not Connector.objects.filter(name="evaluation: docs").exists()


def test_evaluate_retrieval_runs_several_corpora_into_one_table(db, tiny_beir, tmp_path, capsys, monkeypatch, settings):
    from assistant.rag.evaluation import handbook

    settings.BASE_DIR = tmp_path  # the sections are written under BASE_DIR/var/evaluation
    questions = tmp_path / "questions"
    (questions / "qrels").mkdir(parents=True)
    write_jsonl(questions / "queries.jsonl", [{"_id": "hb-1", "text": "how do I remove a package with its configuration files?"}])
    (questions / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nhb-1\tsect.apt.install\t2\n")
    monkeypatch.setattr(handbook, "QUESTIONS_DIR", questions)
    out = tmp_path / "suite.json"
    fixtures = Path(__file__).parent / "fixtures" / "debian-handbook"
    call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--handbook", "--handbook-html", str(fixtures),
                 "--json-out", str(out), "--progress-seconds", "0")
    suite = json.loads(out.read_text())
    assert suite["kind"] == "retrieval-suite" and suite["datasets"] == ["tiny", "debian-handbook-en-US"]
    book = suite["reports"][1]
    assert book["queries"] == 1 and book["corpus"]["documents_indexed"] == 6
    assert book["metrics"]["hybrid"]["recall@10"] == 1.0
    printed = capsys.readouterr().out
    table = printed.split("{", 1)[0]
    assert "corpus mode" in table and "tiny hybrid" in table and "debian-handbook-en-US fulltext" in table
    assert not Connector.objects.filter(name__startswith="evaluation:").exists()

    # Gated corpus by corpus against a suite baseline: a better figure for the handbook fails.
    better = json.loads(out.read_text())
    better["reports"][1]["metrics"]["dense"]["mrr@10"] = 1.5
    (tmp_path / "better.json").write_text(json.dumps(better))
    with pytest.raises(CommandError, match="(?s)debian-handbook-en-US: .*dense.mrr@10"):
        call_command("evaluate", "retrieval", "--beir", str(tiny_beir), "--handbook", "--handbook-html", str(fixtures),
                     "--baseline", str(tmp_path / "better.json"), "--progress-seconds", "0")


def test_evaluate_retrieval_needs_a_corpus_and_a_known_edition(db, tmp_path):
    with pytest.raises(CommandError, match="Name a corpus"):
        call_command("evaluate", "retrieval")
    with pytest.raises(CommandError, match="No handbook edition"):
        call_command("evaluate", "retrieval", "--handbook", "xx-XX", "--handbook-html", str(tmp_path))
