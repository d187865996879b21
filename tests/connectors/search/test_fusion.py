"""Fusion of ranked candidate lists (connectors.search.fusion): pure functions, no database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.search.fusion import METHODS, documents_best, documents_rank, fuse, fused_chunks, ranked

DENSE = [("a", 0.91), ("b", 0.80), ("c", 0.62), ("d", 0.40)]
FULLTEXT = [("c", 14.0), ("e", 9.5), ("a", 3.1)]


def side_of(ids: list[str]) -> list[tuple[str, float]]:
    """A side ranked in the given order, with decreasing scores."""
    return [(item, float(len(ids) - position)) for position, item in enumerate(ids)]


sides = st.lists(st.sampled_from("abcdefghij"), unique=True, max_size=10).map(side_of)


@pytest.mark.parametrize("method", METHODS)
def test_every_candidate_of_either_side_is_kept(method):
    fused = fuse([DENSE, FULLTEXT], [1.0, 1.0], method=method)
    assert set(fused) == {"a", "b", "c", "d", "e"}


@pytest.mark.parametrize("method", METHODS)
@given(dense=sides, fulltext=sides)
def test_an_item_found_by_both_sides_is_never_lost_and_scores_at_least_either_alone(method, dense, fulltext):
    both = fuse([dense, fulltext], [0.6, 0.4], method=method)
    alone_dense = fuse([dense, []], [0.6, 0.4], method=method)
    alone_fulltext = fuse([[], fulltext], [0.6, 0.4], method=method)
    for item in {i for i, _ in dense} & {i for i, _ in fulltext}:
        assert item in both
        assert both[item] >= max(alone_dense[item], alone_fulltext[item])
    assert set(both) == {i for i, _ in dense} | {i for i, _ in fulltext}


@pytest.mark.parametrize("method", METHODS)
@given(order=st.permutations("abcdef"))
def test_an_item_ahead_on_both_sides_stays_ahead(method, order):
    # The same order on both sides: fusion keeps it.
    side = side_of(list(order))
    assert ranked(fuse([side, side], [0.5, 0.5], method=method))[:1] == [order[0]]
    scores = fuse([side, side], [0.5, 0.5], method=method)
    assert all(scores[order[i]] >= scores[order[i + 1]] for i in range(len(order) - 1))


def test_rrf_adds_weight_over_k_plus_rank():
    fused = fuse([DENSE, FULLTEXT], [2.0, 1.0], method="rrf", rrf_k=10)
    assert fused["a"] == pytest.approx(2 / 11 + 1 / 13)
    assert fused["e"] == pytest.approx(1 / 12)
    assert ranked(fused)[0] == "a"


def test_score_fusions_normalise_each_side_before_weighting():
    minmax = fuse([DENSE, FULLTEXT], [0.5, 0.5], method="minmax")
    assert minmax["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)  # best dense, worst full text
    assert minmax["c"] == pytest.approx(0.5 * (0.62 - 0.40) / (0.91 - 0.40) + 0.5 * 1.0)
    borda = fuse([DENSE, FULLTEXT], [1.0, 1.0], method="borda")
    assert borda["a"] == pytest.approx(4 / 4 + 1 / 3)
    dbsf = fuse([DENSE, []], [1.0, 1.0], method="dbsf")
    assert all(0.0 <= value <= 1.0 for value in dbsf.values())
    assert ranked(dbsf) == ["a", "b", "c", "d"]
    # A side whose scores are all equal gives each the same full share.
    assert fuse([[("x", 3.0), ("y", 3.0)]], [1.0], method="minmax") == {"x": 1.0, "y": 1.0}


def test_unknown_methods_and_levels_are_refused():
    with pytest.raises(ValueError, match="unknown fusion method"):
        fuse([DENSE], [1.0], method="vote")
    with pytest.raises(ValueError, match="one weight per side"):
        fuse([DENSE, FULLTEXT], [1.0])
    with pytest.raises(ValueError, match="unknown fusion level"):
        fused_chunks([DENSE], [1.0], {}, level="page")


def test_ties_break_on_the_id_so_the_order_is_stable():
    assert ranked({"b": 1.0, "a": 1.0, "c": 2.0}) == ["c", "a", "b"]


DOCUMENT_OF = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "c1": "C"}


def test_documents_best_keeps_each_document_once_at_its_best_chunk():
    side = [("a2", 0.9), ("b1", 0.8), ("a1", 0.7), ("c1", 0.5)]
    assert documents_best(side, DOCUMENT_OF) == [("A", 0.9), ("B", 0.8), ("C", 0.5)]


def test_documents_rank_sums_the_best_chunks():
    chunk_scores = {"a1": 0.3, "a2": 0.2, "a3": 0.1, "b1": 0.45}
    assert documents_rank(chunk_scores, DOCUMENT_OF, top=1) == {"A": 0.3, "B": 0.45}
    assert documents_rank(chunk_scores, DOCUMENT_OF, top=2) == pytest.approx({"A": 0.5, "B": 0.45})


def test_document_fusion_lets_two_sides_agree_on_different_chunks_of_one_document():
    # Dense found chunk a1 of document A, full text chunk a2 of it; B is second on both sides.
    dense = [("a1", 0.9), ("b1", 0.8), ("c1", 0.7)]
    fulltext = [("c1", 12.0), ("a2", 11.0), ("b1", 10.0)]
    by_chunk = [chunk for chunk, _ in fused_chunks([dense, fulltext], [1, 1], DOCUMENT_OF, method="rrf", rrf_k=1)]
    assert by_chunk[0] == "c1"  # chunk-level: c1 is on both sides, a1 and a2 each on one
    by_document = fused_chunks([dense, fulltext], [1, 1], DOCUMENT_OF, method="rrf", rrf_k=1, level="document")
    assert [chunk for chunk, _ in by_document] == ["a1", "a2", "c1", "b1"]  # A's chunks together, first
    assert by_document[0][1] == by_document[1][1] == pytest.approx(1 / 2 + 1 / 3)  # a chunk scores as its document


def test_sum_of_top_chunks_ranks_a_document_with_several_good_chunks_higher():
    side = [("b1", 0.9), ("a1", 0.8), ("a2", 0.7)]  # RRF, k=1: 1/2, 1/3, 1/4
    fused = fused_chunks([side], [1.0], DOCUMENT_OF, method="rrf", rrf_k=1, top=2)
    assert [chunk for chunk, _ in fused][:2] == ["a1", "a2"]  # A: 1/3 + 1/4 > B: 1/2
    best_chunk = fused_chunks([side], [1.0], DOCUMENT_OF, method="rrf", rrf_k=1, top=1)
    assert [chunk for chunk, _ in best_chunk][0] == "b1"
