"""BM25's k1 and b measured on several corpora at once, full text alone and fused at the product's defaults.

The full-text side ranks by Okapi BM25 (connectors/search/bm25.py) with RAG_BM25_K1 and RAG_BM25_B,
1.2 and 0.75 (Lucene's defaults), never measured here. Each corpus is ingested and both sides are
searched once through bench/fusion_sweep.py's `collect` (the product's functions, RAG_CANDIDATES per
side, the evaluation connector kept); then, for each (k1, b) of the grid, the full-text side is
searched again with those settings (`chunks_fulltext_scored`; the candidates do not depend on them,
only their scores) and scored alone and fused with the unchanged dense side by the product's fusion
settings (RAG_FUSION, RAG_RRF_K, the side weights, the aggregation), like `evaluate retrieval`.

The setting picked is the one best on all corpora at once, as the fusion sweep picks: the largest
worst-case margin of hybrid nDCG@10 over the better single side of each corpus (to 0.001), then the
best mean hybrid nDCG@10. Prints one JSON object.

Usage (the evaluation's environment: DATABASE_URL, CONNECTOR_DATA_DIR holding the BEIR folder):
    .venv/bin/python bench/bm25_sweep.py --beir /path/to/scifact --handbook [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

K1S = (0.6, 0.9, 1.2, 1.5, 2.0)
BS = (0.3, 0.5, 0.75, 0.9)


def fusion_sweep():
    spec = importlib.util.spec_from_file_location("fusion_sweep", ROOT / "bench" / "fusion_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def product_fusion() -> dict:
    """The product's fusion settings, in the fusion sweep's terms."""
    from django.conf import settings

    return {"method": settings.RAG_FUSION, "rrf_k": settings.RAG_RRF_K, "dense_weight": settings.RAG_DENSE_WEIGHT,
            "fulltext_weight": settings.RAG_FULLTEXT_WEIGHT, "level": settings.RAG_FUSION_LEVEL,
            "top": settings.RAG_FUSION_DOCUMENT_CHUNKS}


def fulltext_again(lists, connector_id, queries: dict[str, str]) -> None:
    """Search each query's full-text side again with the settings in force (the dense side stays)."""
    from connectors.search import SearchFilters
    from connectors.search.fulltext import chunks_fulltext_scored

    only_this = SearchFilters(connector_ids=(connector_id,))
    for qid, (dense, _) in lists.sides.items():
        lists.sides[qid] = (dense, chunks_fulltext_scored(text=queries[qid], groups=[], k=lists.k, filters=only_this))


def scored(lists, fusion: dict) -> dict:
    return {"dense": lists.run(None, "dense"), "fulltext": lists.run(None, "fulltext"), "hybrid": lists.run(fusion)}


def pick(results: list[dict]) -> dict:
    """Best on all corpora at once: the largest worst-case hybrid margin over the better single side
    (to 0.001), then the best mean hybrid nDCG@10."""
    return max(results, key=lambda r: (round(min(r["hybrid_margin"].values()), 3), r["mean_hybrid_ndcg@10"]))


def sweep(corpora: list[tuple], fusion: dict, grid) -> list[dict]:
    """corpora: (Lists, connector id, queries) each; grid: (k1, b) pairs. One row per setting."""
    from django.test import override_settings

    from connectors.search import bm25

    results = []
    for k1, b in grid:
        with override_settings(RAG_BM25_K1=k1, RAG_BM25_B=b):
            bm25.statistics_clear()
            per_corpus = {}
            for lists, connector_id, queries in corpora:
                fulltext_again(lists, connector_id, queries)
                per_corpus[lists.dataset] = scored(lists, fusion)
        results.append({
            "k1": k1, "b": b,
            "ndcg@10": {name: {mode: m["ndcg@10"] for mode, m in modes.items()} for name, modes in per_corpus.items()},
            "recall@10": {name: {mode: m["recall@10"] for mode, m in modes.items()} for name, modes in per_corpus.items()},
            "hybrid_margin": {name: round(modes["hybrid"]["ndcg@10"]
                                          - max(modes["dense"]["ndcg@10"], modes["fulltext"]["ndcg@10"]), 4)
                              for name, modes in per_corpus.items()},
            "mean_hybrid_ndcg@10": round(sum(m["hybrid"]["ndcg@10"] for m in per_corpus.values()) / len(per_corpus), 4),
        })
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beir", type=Path, action="append", default=[], help="BEIR directory (repeatable).")
    parser.add_argument("--handbook", nargs="?", const="en-US", help="Debian handbook edition (default en-US).")
    parser.add_argument("--keep", action="store_true", help="Keep the evaluation connectors for a faster re-run.")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    import django

    django.setup()
    from django.conf import settings

    from assistant.rag.evaluation.datasets import beir_corpus
    from assistant.rag.evaluation.handbook import handbook_corpus
    from assistant.rag.evaluation.corpus import corpus_remove
    from connectors.models import Connector

    corpora = [beir_corpus(root) for root in args.beir]
    if args.handbook:
        corpora.append(handbook_corpus(args.handbook))
    if not corpora:
        parser.error("name a corpus: --beir DIR and/or --handbook")

    def log(message):
        print(message, file=sys.stderr, flush=True)

    fs = fusion_sweep()
    started = time.monotonic()
    collected = []
    for corpus in corpora:
        # kept while the grid is searched; removed at the end unless --keep
        lists = fs.collect(corpus, settings.RAG_CANDIDATES, True, log)
        queries, _ = fs.judged(corpus, ["test"], log)
        connector = Connector.objects.get(name=f"evaluation: {corpus.dataset}")
        collected.append((lists, connector.id, queries))
    searched = time.monotonic() - started
    fusion = product_fusion()
    grid = list(itertools.product(K1S, BS))
    try:
        results = sweep(collected, fusion, grid)
    finally:
        if not args.keep:
            from assistant.rag.evaluation.corpus import Corpus

            for lists, connector_id, _ in collected:
                corpus_remove(Corpus(Connector.objects.get(id=connector_id), {}), keep=False, log=log)
    default = next(r for r in results if (r["k1"], r["b"]) == (settings.RAG_BM25_K1, settings.RAG_BM25_B))
    print(json.dumps({
        "benchmark": "bm25_sweep",
        "corpora": {lists.dataset: lists.summary for lists, _, _ in collected},
        "fusion": fusion,
        "candidates_per_side": settings.RAG_CANDIDATES,
        "embedding_model": settings.EMBEDDING_MODEL,
        "default": default,
        "chosen": pick(results),
        "best_fulltext_per_corpus": {
            name: max(results, key=lambda r: r["ndcg@10"][name]["fulltext"]) for name in default["ndcg@10"]},
        "best_hybrid_per_corpus": {
            name: max(results, key=lambda r: r["ndcg@10"][name]["hybrid"]) for name in default["ndcg@10"]},
        "criterion": "the largest worst-case margin of hybrid nDCG@10 over the better single side, across the "
                     "corpora (to 0.001), then the best mean hybrid nDCG@10",
        "all": results,
        "timing": {"search_s": round(searched, 1), "sweep_s": round(time.monotonic() - started - searched, 1)},
    }, indent=2))


if __name__ == "__main__":
    main()
