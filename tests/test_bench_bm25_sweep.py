"""bench/bm25_sweep.py picks the BM25 setting that holds on every corpus, not the best on one."""

from __future__ import annotations

from tests.bench_scripts import bench_script


def load_sweep():
    return bench_script("bm25_sweep")


def test_the_pick_is_the_largest_worst_case_margin_then_the_best_mean():
    sweep = load_sweep()
    best_on_one = {"k1": 0.9, "b": 0.3, "hybrid_margin": {"scifact": 0.06, "handbook": -0.01}, "mean_hybrid_ndcg@10": 0.80}
    holds = {"k1": 1.2, "b": 0.75, "hybrid_margin": {"scifact": 0.03, "handbook": 0.02}, "mean_hybrid_ndcg@10": 0.78}
    same_margin_better_mean = {"k1": 1.5, "b": 0.75, "hybrid_margin": {"scifact": 0.0204, "handbook": 0.0196},
                               "mean_hybrid_ndcg@10": 0.79}
    assert sweep.pick([best_on_one, holds]) is holds
    assert sweep.pick([best_on_one, holds, same_margin_better_mean]) is same_margin_better_mean


def test_the_fusion_replayed_is_the_products(settings):
    settings.RAG_FUSION, settings.RAG_RRF_K = "rrf", 7
    settings.RAG_DENSE_WEIGHT, settings.RAG_FULLTEXT_WEIGHT = 0.65, 0.35
    settings.RAG_FUSION_LEVEL, settings.RAG_FUSION_DOCUMENT_CHUNKS = "chunk", 1
    assert load_sweep().product_fusion() == {"method": "rrf", "rrf_k": 7, "dense_weight": 0.65, "fulltext_weight": 0.35,
                                             "level": "chunk", "top": 1}
