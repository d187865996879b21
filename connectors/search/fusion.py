"""Fusing ranked candidate lists (dense, full text) into one order: pure functions, no database.

A side is a list of (id, score) pairs, best first (a cosine similarity, a BM25 score). Methods:

- "rrf": reciprocal rank fusion, sum of weight / (k + rank). Ranks only; k flattens the curve.
- "borda": sum of weight * (n - rank + 1) / n over a side of n candidates: linear in the rank.
- "minmax": sum of weight * (score - min) / (max - min) within each side's candidates (a convex
  combination of the normalised scores when the weights add up to 1).
- "dbsf": distribution-based score fusion: each side's scores mapped from mean ± 3 standard
  deviations onto 0..1 (clipped), then weighted and added; robust to one outlying score.

An id missing from a side gets nothing from it (the lowest normalised value). Every id of every
side is in the result, and an id found by several sides scores at least what any one gives it.

Ids can be chunks or documents. `documents_best` collapses a side of chunks to its documents
(each at its best chunk), so that two sides that found different chunks of one document agree
on it; `documents_rank` orders documents by their chunks' fused scores (the best one, or the
sum of the best few).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence

Side = Sequence[tuple[Hashable, float]]

METHODS = ("rrf", "borda", "minmax", "dbsf")
LEVELS = ("chunk", "document")


def _rrf(side: Side, k: float) -> dict:
    return {item: 1.0 / (k + rank) for rank, (item, _) in enumerate(side, start=1)}


def _borda(side: Side) -> dict:
    n = len(side)
    return {item: (n - rank + 1) / n for rank, (item, _) in enumerate(side, start=1)}


def _minmax(side: Side) -> dict:
    if not side:
        return {}
    scores = [score for _, score in side]
    low, high = min(scores), max(scores)
    span = high - low
    return {item: (score - low) / span if span > 0 else 1.0 for item, score in side}


def _dbsf(side: Side) -> dict:
    if not side:
        return {}
    scores = [score for _, score in side]
    mean = sum(scores) / len(scores)
    deviation = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if deviation == 0:
        return {item: 1.0 for item, _ in side}
    low, span = mean - 3 * deviation, 6 * deviation
    return {item: min(1.0, max(0.0, (score - low) / span)) for item, score in side}


def normalised(side: Side, method: str, rrf_k: float = 60) -> dict:
    """Each id's contribution from one side, before weighting."""
    if method == "rrf":
        return _rrf(side, rrf_k)
    if method == "borda":
        return _borda(side)
    if method == "minmax":
        return _minmax(side)
    if method == "dbsf":
        return _dbsf(side)
    raise ValueError(f"unknown fusion method {method!r}; expected one of {', '.join(METHODS)}")


def fuse(sides: Sequence[Side], weights: Sequence[float], *, method: str = "rrf", rrf_k: float = 60) -> dict:
    """id -> fused score over every id of every side (higher is better)."""
    if len(sides) != len(weights):
        raise ValueError("one weight per side")
    fused: dict = {}
    for side, weight in zip(sides, weights):
        for item, value in normalised(side, method, rrf_k).items():
            fused[item] = fused.get(item, 0.0) + weight * value
    return fused


def ranked(scores: Mapping, tie=None) -> list:
    """Ids by score, best first; ties broken by `tie(id)` (default: the id itself) for a stable order."""
    key: Callable = tie or (lambda item: item)
    return sorted(scores, key=lambda item: (-scores[item], key(item)))


def documents_best(side: Side, document_of: Mapping) -> list[tuple[Hashable, float]]:
    """A side of chunks as a side of documents: each document once, at its best chunk's place and score."""
    seen: dict = {}
    for chunk, score in side:
        document = document_of[chunk]
        if document not in seen:
            seen[document] = score
    return list(seen.items())


def documents_rank(chunk_scores: Mapping, document_of: Mapping, *, top: int = 1) -> dict:
    """document -> score: the sum of its `top` best chunk scores (1: the best chunk alone)."""
    per_document: dict = {}
    for chunk, score in chunk_scores.items():
        per_document.setdefault(document_of[chunk], []).append(score)
    return {document: sum(sorted(scores, reverse=True)[:top]) for document, scores in per_document.items()}


def fused_chunks(
    sides: Sequence[Side],
    weights: Sequence[float],
    document_of: Mapping | None = None,
    *,
    method: str = "rrf",
    rrf_k: float = 60,
    level: str = "chunk",
    top: int = 1,
) -> list[tuple[Hashable, float]]:
    """The chunks of every side, fused, best first, as (chunk, score).

    level "chunk": chunks are fused as they are; with `top` > 1 (and `document_of`), chunks
    are ordered by their document's score, the sum of its `top` best fused chunk scores.
    level "document": each side is first collapsed to its documents (each at its best chunk),
    the documents are fused, and chunks follow their document's order. In both, a chunk's own
    fused score orders the chunks of one document, and the returned score is its document's
    where documents decide.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown fusion level {level!r}; expected one of {', '.join(LEVELS)}")
    chunk_scores = fuse(sides, weights, method=method, rrf_k=rrf_k)
    if document_of is None or (level == "chunk" and top <= 1):
        return [(chunk, chunk_scores[chunk]) for chunk in ranked(chunk_scores)]
    if level == "document":
        document_scores = fuse([documents_best(side, document_of) for side in sides], weights,
                               method=method, rrf_k=rrf_k)
    else:
        document_scores = documents_rank(chunk_scores, document_of, top=top)
    order = sorted(chunk_scores, key=lambda c: (-document_scores[document_of[c]], document_of[c], -chunk_scores[c], c))
    return [(chunk, document_scores[document_of[chunk]]) for chunk in order]
