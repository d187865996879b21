"""bench/fusion_sweep.py replays fusion settings on searched lists and picks one that holds on every corpus."""

from __future__ import annotations

from tests.bench_scripts import bench_script


def load_sweep():
    return bench_script("fusion_sweep")


def test_the_sweep_scores_every_setting_and_picks_one_not_worse_than_either_side():
    sweep = load_sweep()
    # Two corpora of searched lists: chunk ids -> document ids -> external ids. On "long", the
    # relevant document D has different chunks on the two sides; on "short", only dense is right.
    document_of = {1: 10, 2: 10, 3: 20, 4: 30, 5: 40}
    external = {10: "D", 20: "E", 30: "F", 40: "G"}
    long = sweep.Lists(
        "long", {"q": {"D": 1}},
        {"q": ([(3, 0.9), (1, 0.8)], [(4, 9.0), (2, 8.0)])},  # D second on both sides, through chunks 1 and 2
        document_of, external, {}, 50,
    )
    short = sweep.Lists(
        "short", {"q": {"G": 1}},
        {"q": ([(5, 0.9), (3, 0.5)], [(3, 5.0), (5, 4.0)])},
        document_of, external, {}, 50,
    )
    result = sweep.sweep([long, short])
    assert result["grid_size"] == len(result["all"]) == len(list(sweep.configurations()))
    assert result["before"]["config"] == {"method": "rrf", "rrf_k": 60, "dense_weight": 0.5, "fulltext_weight": 0.5,
                                          "level": "chunk", "top": 1}
    chosen = result["chosen"]
    assert chosen["holds_on_all"] and min(chosen["margin_ndcg@10"].values()) >= 0
    # Counting D's two chunks (or fusing documents) puts it first on "long"; chunk-level RRF cannot.
    assert chosen["metrics"]["long"]["ndcg@10"] == 1.0
    assert result["before"]["metrics"]["long"]["ndcg@10"] < 1.0
    assert result["single_sides"]["short"]["dense"]["ndcg@10"] == 1.0
