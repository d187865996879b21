"""Retrieval on a BEIR data set: every judged query ranked in each search mode, scored with
nDCG@10, Recall@10, Recall@100 and MRR@10, at the product's candidates per side by default."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from assistant.rag.evaluation import metrics as ev
from assistant.rag.evaluation.corpus import corpus_ingest, corpus_remove, index_settings
from assistant.rag.evaluation.datasets import EvaluationError, read_qrels, read_queries
from connectors.indexing import embedded_text_fingerprint, get_embedder
from connectors.search import SearchFilters, chunks_search

ALL_MODES = ("dense", "fulltext", "hybrid")
COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
DOCUMENTS_PER_QUERY = 100  # enough for Recall@100


def _judged_queries(root: Path, split: str, limit: int | None, log) -> tuple[dict, dict, Path]:
    corpus, queries_file = root / "corpus.jsonl", root / "queries.jsonl"
    if not corpus.is_file() and (root / "corpus").is_dir():
        corpus = root / "corpus"  # a folder of documents: ids are their paths under it
    qrels_file = root / "qrels" / f"{split}.tsv"
    for path in (corpus, queries_file, qrels_file):
        if not path.exists():
            raise EvaluationError(
                f"{path} is missing: --beir needs corpus.jsonl (or a folder corpus/), queries.jsonl "
                "and qrels/<split>.tsv"
            )
    queries = read_queries(queries_file)
    qrels = read_qrels(qrels_file)
    judged = [qid for qid in qrels if qid in queries and any(rel > 0 for rel in qrels[qid].values())]
    missing = [qid for qid in qrels if qid not in queries]
    if missing:
        log(f"warning: {len(missing)} judged queries have no text in queries.jsonl; skipped")
    judged = judged[:limit] if limit else judged
    if not judged:
        raise EvaluationError(f"No judged queries in {qrels_file}")
    return {qid: queries[qid] for qid in judged}, {qid: qrels[qid] for qid in judged}, corpus


def retrieval_evaluate(*, beir: Path, split: str, modes: list[str], limit: int | None, candidates: int,
                       chunks: int | None, name: str | None, keep: bool, progress_seconds: float, log) -> dict:
    unknown = set(modes) - set(ALL_MODES)
    if unknown or not modes:
        raise EvaluationError(f"--modes takes some of {', '.join(ALL_MODES)}; got {','.join(modes)!r}")
    try:
        embedded_text_fingerprint()  # a CHUNK_CONTEXT given with --set is checked before anything is ingested
    except ImproperlyConfigured as exc:
        raise EvaluationError(str(exc)) from None
    root = beir.expanduser().resolve()
    queries, qrels, corpus_file = _judged_queries(root, split, limit, log)
    corpus = corpus_ingest(corpus_file, name or f"evaluation: {root.name}", progress_seconds=progress_seconds, log=log)
    ranked = chunks or candidates
    try:
        embed_started = time.monotonic()
        embeddings = get_embedder().embed(list(queries.values()))
        embed_s = time.monotonic() - embed_started
        only_this = SearchFilters(connector_ids=(corpus.connector.id,))
        metrics, search_timing, short_lists = {}, {}, {}
        for mode in modes:
            mode_started = time.monotonic()
            run: dict[str, list[str]] = {}
            for (qid, text), embedding in zip(queries.items(), embeddings):
                hits = chunks_search(embedding=embedding, text=text, groups=[], k=ranked, mode=mode,
                                     candidates=candidates, filters=only_this)
                # A document ranks where its best chunk ranks.
                run[qid] = ev.unique(hit.chunk.document.external_id for hit in hits)[:DOCUMENTS_PER_QUERY]
            elapsed = time.monotonic() - mode_started
            metrics[mode] = {k: round(v, 4) for k, v in ev.evaluate_run(run, qrels).items()}
            search_timing[mode] = {"total_s": round(elapsed, 1), "ms_per_query": round(1000 * elapsed / len(queries), 1)}
            short_lists[mode] = sum(1 for ids in run.values() if len(ids) < DOCUMENTS_PER_QUERY)
            log(f"{mode}: nDCG@10 {metrics[mode]['ndcg@10']:.4f} ({elapsed:.1f}s)")
    finally:
        corpus_remove(corpus, keep=keep, log=log)
    return {
        "kind": "retrieval",
        "dataset": root.name,
        "split": split,
        "queries": len(queries),
        "relevant_pairs": sum(sum(1 for r in rel.values() if r > 0) for rel in qrels.values()),
        "corpus": corpus.summary,
        "metrics": metrics,
        "queries_with_fewer_than_100_documents": short_lists,
        "settings": {**index_settings(), "candidates": candidates, "chunks_per_query": ranked,
                     "documents_per_query": DOCUMENTS_PER_QUERY},
        "timing": {"ingest_s": corpus.summary["seconds"], "embed_queries_s": round(embed_s, 1), "search": search_timing},
    }
