"""Full-text retrieval quality on a BEIR data set in about a minute: no embeddings.

`manage.py evaluate retrieval` measures every mode through the whole pipeline, which embeds
every chunk (SciFact: about 15,000 chunks, most of an hour on two busy cores). To iterate on
the full-text side alone, this loads the corpus into a scratch database the way the index
stage stores it (the same chunker and settings, the same `search_vector`: title weight A, then
the chunk's text; a constant placeholder vector and no HNSW index), runs ANALYZE, and ranks
every judged query with the product's `chunk_ids_fulltext` (BM25, connectors.search.bm25).
A document ranks where its best chunk ranks, as in `evaluate retrieval`. Prints one JSON object.

Usage: .venv/bin/python bench/fulltext_beir.py --beir ../shared/data/scifact [--k 300]
       [--set RAG_BM25_K1=0.9 ...] [--keep | --reuse]
       [--database-url postgres://postgres@127.0.0.1:5432/bench_fulltext]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retrieval import bench_environment, create_database, drop_database  # noqa: E402


def read_beir(root: Path, split: str) -> tuple[list[dict], dict, dict]:
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").open() if line.strip()]
    queries = {}
    for line in (root / "queries.jsonl").open():
        if line.strip():
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate((root / "qrels" / f"{split}.tsv").open()):
        parts = line.rstrip("\n").split("\t")
        if number == 0 and not parts[-1].lstrip("-").isdigit():
            continue  # header
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return corpus, queries, qrels


def load(corpus: list[dict]) -> dict:
    from django.conf import settings
    from django.db import connection

    from connectors.chunking import chunk_text
    from connectors.models import Chunk, Connector, Document

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")  # no vectors here
    connector = Connector.objects.create(name="beir", kind="jsonl", config={}, is_public=True)
    documents = Document.objects.bulk_create(
        # as the jsonl source and parse_item store a line: the title (else the id) and the text as is
        (Document(connector=connector, external_id=str(row["_id"]), title=" ".join((row.get("title") or "").split()) or str(row["_id"]),
                  text=row.get("text") or "", content_hash="-", acl_public=True, index_status="indexed")
         for row in corpus),
        batch_size=1000,
    )
    placeholder = [0.0] * (settings.EMBEDDING_DIMENSIONS - 1) + [1.0]
    chunks = [
        Chunk(document=doc, connector=connector, ordinal=ordinal, text=span.text, start_char=span.start,
              end_char=span.end, token_count=span.token_count, embedding=placeholder, acl_public=True)
        for doc in documents
        for ordinal, span in enumerate(
            chunk_text(doc.text, max_tokens=settings.CHUNK_TOKENS, overlap_tokens=settings.CHUNK_OVERLAP_TOKENS)
        )
    ]
    Chunk.objects.bulk_create(chunks, batch_size=1000)
    with connection.cursor() as cursor:
        # the migration's backfill: the same expression as chunk_search_vector, for all chunks at once
        cursor.execute(import_module("connectors.migrations.0003_chunk_search_vector_title").BACKFILL)
        cursor.execute("ANALYZE connectors_chunk")
    return {"documents": len(documents), "chunks": len(chunks), "load_s": round(time.perf_counter() - started, 1)}


def evaluate(queries: dict, qrels: dict, k: int) -> dict:
    from assistant.rag import evaluation as ev
    from connectors.models import Chunk
    from connectors.search.fulltext import chunk_ids_fulltext

    judged = [qid for qid in qrels if qid in queries and any(rel > 0 for rel in qrels[qid].values())]
    external = dict(Chunk.objects.values_list("id", "document__external_id"))
    run, times = {}, []
    for qid in judged:
        started = time.perf_counter()
        ids = chunk_ids_fulltext(text=queries[qid], groups=[], k=k)
        times.append(time.perf_counter() - started)
        run[qid] = ev.unique(external[i] for i in ids)[:100]
    metrics = ev.evaluate_run(run, {qid: qrels[qid] for qid in judged})
    times_ms = sorted(1000 * t for t in times)
    return {
        "queries": len(judged),
        "metrics": {name: round(value, 4) for name, value in metrics.items()},
        "ms_per_query": {"p50": round(statistics.median(times_ms), 1),
                         "p95": round(times_ms[int(0.95 * (len(times_ms) - 1))], 1)},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=300, help="chunks ranked per query (evaluate's --chunks)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SETTING=VALUE")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_fulltext")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="rank again on a database kept by --keep")
    args = parser.parse_args(argv)
    corpus, queries, qrels = read_beir(args.beir.expanduser().resolve(), args.split)

    if not args.reuse:
        create_database(args.database_url)
    os.environ.update(bench_environment(args.database_url))
    import django

    django.setup()
    from django.conf import settings

    overrides = {}
    for item in args.overrides:
        name, _, raw = item.partition("=")
        if not hasattr(settings, name):
            parser.error(f"unknown setting {name!r}")
        overrides[name] = type(getattr(settings, name))(raw)
        setattr(settings, name, overrides[name])
    try:
        loaded = {"reused_database": True} if args.reuse else load(corpus)
        result = evaluate(queries, qrels, args.k)
    finally:
        if not (args.keep or args.reuse):
            from django.db import connections

            connections.close_all()
            drop_database(args.database_url)
    report = {
        "benchmark": "fulltext_beir",
        "dataset": args.beir.name,
        "split": args.split,
        **result,
        "corpus": loaded,
        "settings": {
            "k": args.k,
            "bm25_k1": settings.RAG_BM25_K1,
            "bm25_b": settings.RAG_BM25_B,
            "fulltext_max_candidates": settings.RAG_FULLTEXT_MAX_CANDIDATES,
            "fulltext_languages": list(settings.RAG_FULLTEXT_LANGUAGES),
            "chunk_tokens": settings.CHUNK_TOKENS,
            "chunk_overlap_tokens": settings.CHUNK_OVERLAP_TOKENS,
            "overrides": overrides,
        },
    }
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
