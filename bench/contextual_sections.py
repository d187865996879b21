"""Contextual chunks judged per section: does a chunk's heading chain help find the right section?

The page-level figures of bench/contextual_chunks.py judge a page relevant when any of its
sections is; headings pull a chunk towards its section, which that cannot reward. Here the same
page corpus (the handbook's HTML pages read by the product's parser) is ranked chunk by chunk
with the product's search, each chunk is placed in the section whose heading is the last at or
before its start (the section's HTML anchor: the ids of docs/evaluation/debian-handbook), and
sections are scored against the section judgments. Each CHUNK_CONTEXT is ingested into a
connector of its own (embeddings from the same cache as bench/contextual_chunks.py). Prints one
JSON object.

Usage: .venv/bin/python bench/contextual_sections.py [--queries 50] [--pages 45] [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from bisect import bisect_right
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.contextual_chunks import CONTEXTS, install_cache  # noqa: E402
from bench.handbook_pages import HTML, QUESTIONS, handbook_pages_beir  # noqa: E402


def heading_anchors(page: Path) -> dict[str, str]:
    """A page's heading texts (whitespace collapsed) -> the anchor of the section they head."""
    from lxml import html as lxml_html

    found = {}
    for heading in lxml_html.fromstring(page.read_bytes()).iter("h1", "h2", "h3", "h4", "h5", "h6"):
        anchor = next((a.get("id") for a in heading.iter("a") if a.get("id")), None)
        if anchor is None:
            division = heading.getparent()
            while division is not None and not division.get("id"):
                division = division.getparent()
            anchor = division.get("id") if division is not None else None
        if anchor:
            found.setdefault(" ".join(heading.text_content().split()), anchor)
    return found


def section_of_chunks(connector, corpus: Path) -> dict[int, str]:
    from connectors.models import Chunk, Document

    where: dict[int, str] = {}
    for document in Document.objects.filter(connector=connector):
        anchors = heading_anchors(corpus / document.external_id)
        marks = [(offset, anchors.get(text)) for offset, _level, text in document.headings]
        offsets = [offset for offset, _ in marks]
        for chunk_id, start in Chunk.objects.filter(document=document).values_list("id", "start_char"):
            index = bisect_right(offsets, start) - 1
            anchor = next((a for _, a in reversed(marks[: index + 1]) if a), None)
            where[chunk_id] = anchor or f"{document.external_id}#top"
    return where


def measure(context: str, beir: Path, queries: dict, qrels: dict) -> dict:
    from django.test.utils import override_settings

    from assistant.rag.evaluation import metrics as ev
    from assistant.rag.evaluation.corpus import corpus_ingest, corpus_remove, eager_tasks
    from connectors import sync
    from connectors.search import SearchFilters, chunks_search

    with override_settings(CHUNK_CONTEXT=context, CONNECTOR_DATA_DIR=[str(beir.resolve())]), eager_tasks():
        corpus = corpus_ingest(beir / "corpus", f"contextual sections: {context}", progress_seconds=0,
                               log=lambda line: print(line, file=sys.stderr))
        try:
            where = section_of_chunks(corpus.connector, beir / "corpus")
            embeddings = sync.get_embedder().embed(list(queries.values()))
            metrics = {}
            for mode in ("dense", "fulltext", "hybrid"):
                run = {}
                for (qid, text), embedding in zip(queries.items(), embeddings):
                    hits = chunks_search(embedding=embedding, text=text, groups=[], k=50, mode=mode, candidates=50,
                                         filters=SearchFilters(connector_ids=(corpus.connector.id,)))
                    run[qid] = ev.unique(where[hit.chunk.id] for hit in hits)
                metrics[mode] = {k: round(v, 4) for k, v in ev.evaluate_run(run, qrels).items()}
        finally:
            corpus_remove(corpus, keep=False, log=lambda line: None)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--pages", type=int, default=45)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "contextual-chunks-vectors.sqlite")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    import django

    django.setup()
    from assistant.rag.evaluation.datasets import read_qrels, read_queries

    install_cache(args.cache)
    beir = handbook_pages_beir(Path(tempfile.gettempdir()) / "contextual-chunks" / "handbook-pages",
                               pages=args.pages, queries=args.queries)
    queries = read_queries(beir / "queries.jsonl")
    sections = read_qrels(QUESTIONS / "qrels" / "test.tsv")
    qrels = {qid: sections[qid] for qid in queries}
    runs = {context: measure(context, beir, queries, qrels) for context in CONTEXTS}
    base = runs["none"]
    print(json.dumps({
        "kind": "contextual-chunks-by-section", "html": str(HTML), "queries": len(queries), "pages": args.pages,
        "judged_sections": sum(len(v) for v in qrels.values()), "metrics": runs,
        "minus_none": {c: {m: {k: round(v - base[m][k], 4) for k, v in r[m].items()} for m in r}
                       for c, r in runs.items() if c != "none"},
    }, indent=2))


if __name__ == "__main__":
    main()
