"""Fusion settings measured on several corpora at once: which one holds on all of them?

For each corpus (BEIR SciFact, the Debian Administrator's Handbook, ...) the corpus is ingested
through the product's pipeline (`evaluate retrieval`'s own code; a kept "evaluation: <name>"
connector is reused and unchanged documents are skipped), each judged query is embedded and both
sides are searched once with the product's functions at its candidates per side
(`chunks_dense_scored`, `chunks_fulltext_scored`, RAG_CANDIDATES = 50). Every fusion setting is then
replayed on those lists with the product's own `connectors.search.fusion.fused_chunks` (the
function `chunks_search` calls), truncated to the same k, and scored like `evaluate retrieval`
(documents in the order of their first chunk; nDCG@10, Recall@10, Recall@100, MRR@10):

- method: RRF with k in RRF_KS, Borda (linear in the rank), min-max normalised scores (a convex
  combination), distribution-based score fusion (mean ± 3 sd);
- side weights: the dense share w of (w, 1 - w), in DENSE_SHARES;
- aggregation: chunks fused as they are and documents ranked by their best chunk (the product
  before this sweep), or by the sum of their best 2 or 3 fused chunks, or each side collapsed to
  documents (best chunk) and documents fused.

The setting picked is the one that is best on all corpora at once: the largest worst-case margin
of its nDCG@10 over the better single side of each corpus (to 0.001), then the best mean nDCG@10.
Prints one JSON object.

Usage (the evaluation's environment: DATABASE_URL, CONNECTOR_DATA_DIR holding the BEIR folder):
    .venv/bin/python bench/fusion_sweep.py --beir /path/to/scifact --handbook [--candidates 50] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RRF_KS = (1, 5, 10, 20, 40, 60, 100)
DENSE_SHARES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
AGGREGATIONS = (("chunk", 1), ("chunk", 2), ("chunk", 3), ("document", 1))
DOCUMENTS_PER_QUERY = 100


def methods():
    return [("rrf", k) for k in RRF_KS] + [("borda", 60), ("minmax", 60), ("dbsf", 60)]


def configurations():
    for (method, rrf_k), share, (level, top) in itertools.product(methods(), DENSE_SHARES, AGGREGATIONS):
        yield {"method": method, "rrf_k": rrf_k if method == "rrf" else None, "dense_weight": share,
               "fulltext_weight": round(1 - share, 2), "level": level, "top": top}


def label(config: dict) -> str:
    method = f"rrf k={config['rrf_k']}" if config["method"] == "rrf" else config["method"]
    aggregation = "document fusion" if config["level"] == "document" else (
        "best chunk" if config["top"] == 1 else f"sum of top {config['top']} chunks")
    return f"{method}, dense {config['dense_weight']} / full text {config['fulltext_weight']}, {aggregation}"


class Lists:
    """One corpus's judged queries and both sides' candidates, searched once."""

    def __init__(self, dataset, qrels, sides, document_of, external, summary, k):
        self.dataset, self.qrels, self.sides = dataset, qrels, sides
        self.document_of, self.external, self.summary, self.k = document_of, external, summary, k

    def run(self, config: dict | None, side: str | None = None) -> dict:
        from assistant.rag.evaluation import metrics as ev
        from connectors.search.fusion import fused_chunks

        run = {}
        for qid, (dense, fulltext) in self.sides.items():
            if side is not None:
                order = [chunk for chunk, _ in (dense if side == "dense" else fulltext)][: self.k]
            else:
                both = dense and fulltext
                order = [chunk for chunk, _ in fused_chunks(
                    [dense, fulltext], [config["dense_weight"], config["fulltext_weight"]],
                    self.document_of if both and (config["level"] == "document" or config["top"] > 1) else None,
                    method=config["method"], rrf_k=config["rrf_k"] or 60, level=config["level"], top=config["top"],
                )[: self.k]]
            run[qid] = ev.unique(self.external[self.document_of[chunk]] for chunk in order)[:DOCUMENTS_PER_QUERY]
        return {key: round(value, 4) for key, value in ev.evaluate_run(run, self.qrels).items()}


def judged(corpus, splits: list[str], log) -> tuple[dict, dict]:
    """Queries and qrels of one or more splits (ids prefixed by the split when there are several)."""
    from dataclasses import replace

    from assistant.rag.evaluation.retrieval import _judged_queries

    queries, qrels = {}, {}
    for split in splits:
        qrels_file = corpus.qrels_file.with_name(f"{split}.tsv")
        these_queries, these_qrels = _judged_queries(replace(corpus, qrels_file=qrels_file, split=split), None, log)
        prefix = f"{split}:" if len(splits) > 1 else ""
        queries.update({prefix + qid: text for qid, text in these_queries.items()})
        qrels.update({prefix + qid: rel for qid, rel in these_qrels.items()})
    return queries, qrels


def collect(corpus, candidates: int, keep: bool, log, *, splits=("test",), sync: bool = True) -> Lists:
    from assistant.rag.evaluation.corpus import Corpus, corpus_ingest, corpus_remove, eager_tasks
    from assistant.rag.evaluation.retrieval import readable
    from connectors.indexing import embed_questions
    from connectors.models import Chunk, Connector, Document
    from connectors.search import SearchFilters
    from connectors.search.dense import chunks_dense_scored
    from connectors.search.fulltext import chunks_fulltext_scored

    queries, qrels = judged(corpus, list(splits), log)
    name = f"evaluation: {corpus.dataset}"
    if sync:
        with readable(corpus), eager_tasks():
            ingested = corpus_ingest(corpus.corpus_file, name, progress_seconds=30, log=log)
    else:
        # The index as it stands (a sync left unfinished): only the queries whose relevant
        # documents are all indexed are kept, so none is judged against a missing document.
        connector = Connector.objects.filter(name=name).first()
        if connector is None:
            raise SystemExit(f"--no-sync: no connector named {name!r}")
        indexed = set(Document.objects.filter(connector=connector, index_status=Document.IndexStatus.INDEXED)
                      .values_list("external_id", flat=True))
        complete = [q for q in qrels if all(doc in indexed for doc, grade in qrels[q].items() if grade > 0)]
        queries, qrels = {q: queries[q] for q in complete}, {q: qrels[q] for q in complete}
        log(f"{corpus.dataset}: {len(indexed)} documents indexed; {len(complete)} queries with all their relevant documents")
        ingested = Corpus(connector, {"documents_indexed": len(indexed), "partial_index": True,
                                      "chunks": Chunk.objects.filter(connector=connector).count(), "sha256": None})
    try:
        embeddings = embed_questions(list(queries.values()))
        only_this = SearchFilters(connector_ids=(ingested.connector.id,))
        sides = {}
        for (qid, text), embedding in zip(queries.items(), embeddings):
            sides[qid] = (
                chunks_dense_scored(embedding=embedding, groups=[], k=candidates, filters=only_this),
                chunks_fulltext_scored(text=text, groups=[], k=candidates, filters=only_this),
            )
        rows = Chunk.objects.filter(connector=ingested.connector).values_list("id", "document_id", "document__external_id")
        document_of, external = {}, {}
        for chunk_id, document_id, external_id in rows:
            document_of[chunk_id] = document_id
            external[document_id] = external_id
        summary = {"queries": len(queries), "splits": list(splits), "documents": ingested.summary["documents_indexed"],
                   "chunks": ingested.summary["chunks"], "sha256": ingested.summary["sha256"],
                   "partial_index": not sync}
    finally:
        if sync:
            corpus_remove(ingested, keep=keep, log=log)
    return Lists(corpus.dataset, qrels, sides, document_of, external, summary, candidates)


def sweep(corpora: list[Lists]) -> dict:
    sides = {c.dataset: {side: c.run(None, side) for side in ("dense", "fulltext")} for c in corpora}
    best_side = {name: max(values.values(), key=lambda m: m["ndcg@10"])["ndcg@10"] for name, values in sides.items()}
    results = []
    for config in configurations():
        per_corpus = {c.dataset: c.run(config) for c in corpora}
        margins = {name: round(m["ndcg@10"] - best_side[name], 4) for name, m in per_corpus.items()}
        results.append({
            "setting": label(config), "config": config, "metrics": per_corpus, "margin_ndcg@10": margins,
            "holds_on_all": all(margin >= 0 for margin in margins.values()),
            "mean_ndcg@10": round(sum(m["ndcg@10"] for m in per_corpus.values()) / len(per_corpus), 4),
            "mean_recall@10": round(sum(m["recall@10"] for m in per_corpus.values()) / len(per_corpus), 4),
        })
    holding = [r for r in results if r["holds_on_all"]]
    # Best on all corpora: the largest worst-case margin over the better single side (to 0.001),
    # then the best mean nDCG@10.
    chosen = max(results, key=lambda r: (round(min(r["margin_ndcg@10"].values()), 3), r["mean_ndcg@10"]))
    before = next(r for r in results if r["config"] == {"method": "rrf", "rrf_k": 60, "dense_weight": 0.5,
                                                         "fulltext_weight": 0.5, "level": "chunk", "top": 1})
    families = {}
    for r in results:
        family = label({**r["config"], "dense_weight": "w", "fulltext_weight": "1-w"})
        if family not in families or r["mean_ndcg@10"] > families[family]["mean_ndcg@10"]:
            families[family] = r
    ranked = sorted(results, key=lambda r: (r["holds_on_all"], r["mean_ndcg@10"]), reverse=True)
    return {
        "single_sides": sides,
        "before": before,
        "chosen": chosen,
        "settings_holding_on_all": len(holding),
        "top_10": ranked[:10],
        "best_per_family": sorted(
            ({"family": f, "setting": r["setting"], "mean_ndcg@10": r["mean_ndcg@10"], "holds_on_all": r["holds_on_all"],
              "ndcg@10": {n: m["ndcg@10"] for n, m in r["metrics"].items()},
              "recall@10": {n: m["recall@10"] for n, m in r["metrics"].items()}} for f, r in families.items()),
            key=lambda row: -row["mean_ndcg@10"]),
        "grid_size": len(results),
        "all": [{"setting": r["setting"], "worst_margin": min(r["margin_ndcg@10"].values()),
                 "ndcg@10": {n: m["ndcg@10"] for n, m in r["metrics"].items()},
                 "recall@10": {n: m["recall@10"] for n, m in r["metrics"].items()}}
                for r in sorted(results, key=lambda r: -min(r["margin_ndcg@10"].values()))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", type=Path, action="append", default=[], help="BEIR directory (repeatable).")
    parser.add_argument("--handbook", nargs="?", const="en-US", help="Debian handbook edition (default en-US).")
    parser.add_argument("--candidates", type=int, default=None, help="Per side (default: RAG_CANDIDATES).")
    parser.add_argument("--keep", action="store_true", help="Keep the evaluation connectors for a faster re-run.")
    parser.add_argument("--beir-splits", default="test",
                        help="Comma-separated qrels splits of the BEIR corpora, e.g. train,test (default test).")
    parser.add_argument("--no-sync", action="append", default=[], metavar="DATASET",
                        help="Use this data set's kept connector as it is, without a sync (a partial index: only "
                             "the queries whose relevant documents are all indexed count). Repeatable.")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    import django

    django.setup()
    from django.conf import settings

    from assistant.rag.evaluation.datasets import beir_corpus
    from assistant.rag.evaluation.handbook import handbook_corpus

    corpora = beir = [beir_corpus(root) for root in args.beir]
    corpora = list(beir)
    if args.handbook:
        corpora.append(handbook_corpus(args.handbook))
    if not corpora:
        parser.error("name a corpus: --beir DIR and/or --handbook")
    candidates = args.candidates or settings.RAG_CANDIDATES

    def log(message):
        print(message, file=sys.stderr, flush=True)

    started = time.monotonic()
    splits = [split.strip() for split in args.beir_splits.split(",") if split.strip()]
    lists = [collect(corpus, candidates, args.keep, log, splits=splits if corpus in beir else ("test",),
                     sync=corpus.dataset not in args.no_sync) for corpus in corpora]
    searched = time.monotonic() - started
    result = sweep(lists)
    print(json.dumps({
        "benchmark": "fusion_sweep",
        "corpora": {c.dataset: c.summary for c in lists},
        "candidates_per_side": candidates,
        "chunks_per_query": candidates,
        "embedding_model": settings.EMBEDDING_MODEL,
        "criterion": "the largest worst-case margin of hybrid nDCG@10 over the better single side, across the "
                     "corpora (to 0.001), then the best mean nDCG@10",
        **result,
        "timing": {"search_s": round(searched, 1), "sweep_s": round(time.monotonic() - started - searched, 1)},
    }, indent=2))


if __name__ == "__main__":
    main()
