"""Retrieval on judged corpora (BEIR SciFact, the Debian handbook): every judged query ranked in
each search mode, scored with nDCG@10, Recall@10, Recall@100 and MRR@10, at the product's
candidates per side by default; several corpora give one report each and one table."""

from __future__ import annotations

import contextlib
import time

from django.conf import settings
from django.test.utils import override_settings

from django.core.exceptions import ImproperlyConfigured

from assistant.rag.evaluation import metrics as ev
from assistant.rag.evaluation.corpus import corpus_ingest, corpus_remove, index_settings
from assistant.rag.evaluation.datasets import EvaluationError, JudgedCorpus, read_qrels, read_queries
from connectors.indexing import embed_questions, embedded_text_fingerprint
from connectors.search import SearchFilters, chunks_search

ALL_MODES = ("dense", "fulltext", "hybrid")
COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DOCUMENTS_PER_QUERY = 100  # enough for Recall@100


def _judged_queries(corpus: JudgedCorpus, limit: int | None, log) -> tuple[dict, dict]:
    queries = read_queries(corpus.queries_file)
    qrels = read_qrels(corpus.qrels_file)
    judged = [qid for qid in qrels if qid in queries and any(rel > 0 for rel in qrels[qid].values())]
    missing = [qid for qid in qrels if qid not in queries]
    if missing:
        log(f"warning: {len(missing)} judged queries have no text in {corpus.queries_file.name}; skipped")
    judged = judged[:limit] if limit else judged
    if not judged:
        raise EvaluationError(f"No judged queries in {corpus.qrels_file}")
    return {qid: queries[qid] for qid in judged}, {qid: qrels[qid] for qid in judged}


@contextlib.contextmanager
def readable(corpus: JudgedCorpus):
    """The corpus's own folders allowed as data roots while it is ingested (a generated corpus)."""
    if not corpus.data_roots:
        yield
        return
    with override_settings(CONNECTOR_DATA_DIR=[*settings.CONNECTOR_DATA_DIR, *corpus.data_roots]):
        yield


def check_modes(modes: list[str]) -> None:
    unknown = set(modes) - set(ALL_MODES)
    if unknown or not modes:
        raise EvaluationError(f"--modes takes some of {', '.join(ALL_MODES)}; got {','.join(modes)!r}")
    try:
        embedded_text_fingerprint()  # a CHUNK_CONTEXT given with --set is checked before anything is ingested
    except ImproperlyConfigured as exc:
        raise EvaluationError(str(exc)) from None


def retrieval_evaluate(*, corpus: JudgedCorpus, modes: list[str], limit: int | None, candidates: int,
                       chunks: int | None, name: str | None, keep: bool, progress_seconds: float, log) -> dict:
    check_modes(modes)
    queries, qrels = _judged_queries(corpus, limit, log)
    with readable(corpus):
        ingested = corpus_ingest(corpus.corpus_file, name or f"evaluation: {corpus.dataset}",
                                 progress_seconds=progress_seconds, log=log)
    ranked = chunks or candidates
    try:
        embed_started = time.monotonic()
        embeddings = embed_questions(list(queries.values()))
        embed_s = time.monotonic() - embed_started
        only_this = SearchFilters(connector_ids=(ingested.connector.id,))
        metrics, search_timing, short_lists = {}, {}, {}
        for mode in modes:
            mode_started = time.monotonic()
            run: dict[str, list[str]] = {}
            for (qid, text), embedding in zip(queries.items(), embeddings):
                hits = chunks_search(embedding=embedding, text=text, groups=[], k=ranked, mode=mode,
                                     candidates=candidates, filters=only_this)
                # Documents in the order of their first chunk in the list the product returns.
                run[qid] = ev.unique(hit.chunk.document.external_id for hit in hits)[:DOCUMENTS_PER_QUERY]
            elapsed = time.monotonic() - mode_started
            metrics[mode] = {k: round(v, 4) for k, v in ev.evaluate_run(run, qrels).items()}
            search_timing[mode] = {"total_s": round(elapsed, 1), "ms_per_query": round(1000 * elapsed / len(queries), 1)}
            short_lists[mode] = sum(1 for ids in run.values() if len(ids) < DOCUMENTS_PER_QUERY)
            log(f"{corpus.dataset} {mode}: nDCG@10 {metrics[mode]['ndcg@10']:.4f} ({elapsed:.1f}s)")
    finally:
        corpus_remove(ingested, keep=keep, log=log)
    return {
        "kind": "retrieval",
        "dataset": corpus.dataset,
        "split": corpus.split,
        "queries": len(queries),
        "relevant_pairs": sum(sum(1 for r in rel.values() if r > 0) for rel in qrels.values()),
        "corpus": ingested.summary,
        "metrics": metrics,
        "queries_with_fewer_than_100_documents": short_lists,
        "settings": {**index_settings(), "candidates": candidates, "chunks_per_query": ranked,
                     "documents_per_query": DOCUMENTS_PER_QUERY},
        "timing": {"ingest_s": ingested.summary["seconds"], "embed_queries_s": round(embed_s, 1), "search": search_timing},
    }


def retrieval_suite(*, corpora: list[JudgedCorpus], name: str | None, **options) -> dict:
    """One report per corpus; a single corpus gives its report as it is, several a suite."""
    if name and len(corpora) > 1:
        raise EvaluationError("--name names one corpus's connector; leave it out when evaluating several corpora")
    reports = [retrieval_evaluate(corpus=corpus, name=name, **options) for corpus in corpora]
    if len(reports) == 1:
        return reports[0]
    return {
        "kind": "retrieval-suite",
        "datasets": [report["dataset"] for report in reports],
        "reports": reports,
        "settings": {},
        "timing": {},
    }
