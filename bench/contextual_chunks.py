"""Contextual chunks, measured part by part: what the document's title and the section headings
each add to retrieval when they are embedded (and full-text indexed) with every chunk.

For each data set and each CHUNK_CONTEXT value (none, title, headings, title,headings) this runs
`manage.py evaluate retrieval` in this process (dense, full text and hybrid; the product's
RAG_CANDIDATES per side unless --candidates), each into a connector of its own, and prints one
JSON object with every figure and the differences from "none". The stored chunks are the same
in every run; only what is embedded and what the full-text vector holds change.

Data sets:
- scifact: BEIR SciFact (/work/shared/data/scifact): 5,183 abstracts with titles, no headings,
  300 test claims. With no headings, "headings" embeds exactly what "none" does and
  "title,headings" what "title" does: those runs are left out unless --contexts names them.
- handbook: the Debian Administrator's Handbook as its HTML pages (the debian-handbook package),
  read by the product's HTML parser, which sees each page's <title> and h1-h6. The questions
  and judgments come from the handbook evaluation set (assistant/rag/evaluation/handbook.py,
  docs/evaluation/handbook-*): judged sections are mapped to the pages that hold them, and a
  page is relevant when it holds a judged section.

Embeddings are cached by (model, exact text) in --cache (SQLite): a text embedded once is never
embedded again, so a re-run costs only the ingest and the searches, and two contexts that embed
the same text (SciFact: none and headings) share their vectors. The vectors are the model's own
(the cache stores what LocalEmbedder returned); nothing else of the pipeline is bypassed.

Usage: .venv/bin/python bench/contextual_chunks.py [--datasets scifact,handbook]
       [--contexts none,title,headings,title+headings] [--limit N] [--cache FILE] [--out FILE]
(run with the product's environment: DATABASE_URL of a database of its own, SECRET_KEY...).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import report_print  # noqa: E402

CONTEXTS = ("none", "title", "headings", "title,headings")
SCIFACT = Path("/work/shared/data/scifact")
DEFAULT_CONTEXTS = {"scifact": ("none", "title"), "handbook": CONTEXTS}


class CachedEmbedder:
    """Embeddings by (model, text) from a SQLite file; misses go to the real embedder."""

    def __init__(self, embedder, path: Path, model: str):
        self.embedder, self.model = embedder, model
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")
        self.hits = self.misses = 0
        self.embed_seconds = 0.0

    def _key(self, text: str, kind: str) -> str:
        return hashlib.sha256(f"{self.model}\0{kind}{text}".encode()).hexdigest()

    def embed(self, texts):
        return self._embed(texts, "", self.embedder.embed)

    def embed_queries(self, texts):
        """Questions (a model with a "query: " prefix embeds them apart from passages)."""
        from inference.embeddings import embed_queries

        return self._embed(texts, "query\0", lambda batch: embed_queries(self.embedder, batch))

    def _embed(self, texts, kind: str, compute):
        keys = [self._key(text, kind) for text in texts]
        found: dict[str, list[float]] = {}
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            rows = self.db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(batch))})", batch
            ).fetchall()
            found.update((key, np.frombuffer(blob, dtype=np.float32).tolist()) for key, blob in rows)
        missing = [(key, text) for key, text in zip(keys, texts) if key not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            started = time.monotonic()
            vectors = compute([text for _, text in dict(missing).items()])
            self.embed_seconds += time.monotonic() - started
            rows = [(key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in zip(dict(missing), vectors)]
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self.db.commit()
            found.update((key, list(map(float, v))) for key, v in zip(dict(missing), vectors))
        return [found[key] for key in keys]


def install_cache(path: Path) -> CachedEmbedder:
    """Route every embedding call of the pipeline (index stage and queries) through the cache."""
    from django.conf import settings

    from connectors import indexing, sync

    cached = CachedEmbedder(indexing.get_embedder(), path, settings.EMBEDDING_MODEL)
    # The index stage (sync) and the questions (indexing.embed_questions) look these up per call.
    sync.get_embedder = indexing.get_embedder = lambda: cached
    return cached


def evaluate(beir: Path, context: str, *, name: str, limit: int | None, candidates: int | None,
             extra: list[str]) -> dict:
    from django.core.management import call_command

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "report.json"
        args = ["retrieval", "--beir", str(beir), "--name", name, "--json-out", str(out),
                "--set", f"CHUNK_CONTEXT={context}", "--progress-seconds", "60", *extra]
        args += ["--limit", str(limit)] if limit else []
        args += ["--candidates", str(candidates)] if candidates else []
        call_command("evaluate", *args, stdout=StringIO(), stderr=sys.stderr)
        return json.loads(out.read_text())


def scifact_subset(source: Path, target: Path, *, queries: int, documents: int, seed: int = 0) -> Path:
    """A smaller SciFact: the first `queries` judged test claims, every document judged for them,
    and other abstracts drawn at random (seeded) up to `documents` in all. Written once."""
    import random

    if (target / "corpus.jsonl").is_file():
        return target
    lines = (source / "qrels" / "test.tsv").read_text().splitlines()[1:]
    qrels: dict[str, list[str]] = {}
    for line in lines:
        qid, doc, score = line.split("\t")
        if int(score) > 0 and (qid in qrels or len(qrels) < queries):
            qrels.setdefault(qid, []).append(doc)
    judged = {doc for docs in qrels.values() for doc in docs}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").open() if line.strip()]
    others = [row for row in corpus if str(row["_id"]) not in judged]
    kept = {str(row["_id"]) for row in random.Random(seed).sample(others, max(0, documents - len(judged)))} | judged
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    (target / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus if str(r["_id"]) in kept))
    texts = [json.loads(line) for line in (source / "queries.jsonl").open() if line.strip()]
    (target / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in texts if str(q["_id"]) in qrels))
    (target / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, docs in qrels.items() for d in docs)
    )
    return target


def dataset_dir(name: str, work: Path, args) -> tuple[Path, list[str]]:
    """The BEIR directory of a data set, and extra `evaluate retrieval` arguments."""
    if name == "scifact":
        beir = args.scifact
        if args.scifact_documents:
            beir = scifact_subset(beir, work / f"scifact-{args.scifact_queries}q-{args.scifact_documents}d",
                                  queries=args.scifact_queries, documents=args.scifact_documents)
    elif name == "handbook":
        from bench.handbook_pages import handbook_pages_beir

        beir = handbook_pages_beir(work / "handbook-pages", pages=args.handbook_pages, queries=args.handbook_queries)
    else:
        raise SystemExit(f"unknown data set {name!r}; known: scifact, handbook")
    return beir, ["--set", f"CONNECTOR_DATA_DIR={beir.resolve()}"]


def differences(runs: dict) -> dict:
    """Each context's metrics minus those of "none", per mode."""
    base = runs.get("none")
    if base is None:
        return {}
    return {
        context: {
            mode: {metric: round(value - base["metrics"][mode][metric], 4) for metric, value in metrics.items()}
            for mode, metrics in run["metrics"].items()
        }
        for context, run in runs.items() if context != "none"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="scifact,handbook")
    parser.add_argument("--contexts", help="Comma-separated, '+' inside one: none,title,headings,title+headings.")
    parser.add_argument("--scifact", type=Path, default=SCIFACT, help="The SciFact BEIR directory.")
    parser.add_argument("--scifact-documents", type=int,
                        help="A seeded subset of SciFact of this many abstracts (every judged one kept).")
    parser.add_argument("--scifact-queries", type=int, default=150, help="Test claims of that subset (default 150).")
    parser.add_argument("--handbook-queries", type=int, help="The first N handbook questions.")
    parser.add_argument("--handbook-pages", type=int, help="Pages in all: judged ones, then random ones.")
    parser.add_argument("--limit", type=int, help="Only the first N judged queries (a quick look).")
    parser.add_argument("--candidates", type=int, help="Candidates per side (default: RAG_CANDIDATES).")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "contextual-chunks-vectors.sqlite")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    parser.add_argument("--database-url", help="A scratch database to create, migrate, use and drop "
                                                  "(default: DATABASE_URL, left as it was).")
    args = parser.parse_args()
    if args.database_url:
        from bench.retrieval import bench_environment, create_database, drop_database

        create_database(args.database_url)
        os.environ.update(bench_environment(args.database_url))
        try:
            sweep(args)
        finally:
            from django.db import connections

            connections.close_all()
            drop_database(args.database_url)
    else:
        sweep(args)


def sweep(args) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    import django

    django.setup()
    from django.conf import settings

    from connectors.chunk_context import CHUNK_FORMAT_VERSION, HEADER_MAX_TOKENS

    cached = install_cache(args.cache)
    asked = [c.replace("+", ",") for c in args.contexts.split(",")] if args.contexts else None
    report = {
        "kind": "contextual-chunks",
        "date": dt.date.today().isoformat(),
        "chunk_format_version": CHUNK_FORMAT_VERSION,
        "header_max_tokens": HEADER_MAX_TOKENS,
        "candidates": args.candidates or settings.RAG_CANDIDATES,
        "datasets": {},
    }
    work = Path(tempfile.gettempdir()) / "contextual-chunks"
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        beir, extra = dataset_dir(dataset, work, args)
        runs = {}
        for context in asked or DEFAULT_CONTEXTS[dataset]:
            print(f"--- {dataset}: CHUNK_CONTEXT={context}", file=sys.stderr)
            result = evaluate(beir, context, name=f"contextual chunks: {dataset} {context}", limit=args.limit,
                              candidates=args.candidates, extra=extra)
            runs[context] = {key: result[key] for key in ("metrics", "corpus", "timing", "queries")}
            report["datasets"][dataset] = {"beir": str(beir), "runs": runs, "minus_none": differences(runs)}
            if args.out:  # what is measured so far survives an interrupted sweep
                args.out.write_text(json.dumps(report, indent=2) + "\n")
    report["embedding_cache"] = {"hits": cached.hits, "misses": cached.misses,
                                 "embed_seconds": round(cached.embed_seconds, 1)}
    report_print(report, args.out)


if __name__ == "__main__":
    main()
