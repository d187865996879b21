"""Measuring retrieval and answers: standard metrics as pure functions (no ORM).

Retrieval metrics follow the BEIR / pytrec_eval (trec_eval) conventions:

* nDCG@k: gain = the graded relevance from the qrels, discount = log2(rank + 1); the ideal
  ranking sorts the query's qrels by relevance. Judgements with relevance <= 0 add nothing.
* Recall@k: relevant documents in the top k / all relevant documents of the query.
* MRR@k: 1 / rank of the first relevant document in the top k, 0 when there is none.

Queries are averaged over every judged query (a query without results scores 0).

Answer metrics follow the SQuAD evaluation script: answers are normalised (lowercase,
punctuation and the articles a/an/the removed, whitespace collapsed) before exact match
and token-level F1 are computed; with several gold answers the best one counts.

`compare` checks a result against a saved baseline, so CI can fail on a quality drop.
"""

from __future__ import annotations

import math
import re
import statistics
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Qrels = Mapping[str, Mapping[str, int]]  # query id -> document id -> relevance
Run = Mapping[str, Sequence[str]]  # query id -> ranked document ids, best first

# --- retrieval ------------------------------------------------------------------------------------


def dcg(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """nDCG@k of one ranked list against one query's graded judgements."""
    ideal = dcg(sorted((rel for rel in relevance.values() if rel > 0), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return dcg(max(relevance.get(doc, 0), 0) for doc in unique(ranked)[:k]) / ideal


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, rel in relevance.items() if rel > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(unique(ranked)[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(unique(ranked)[:k], start=1):
        if relevance.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def hit_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """1.0 when any relevant item is in the top k."""
    return 1.0 if set(relevant).intersection(unique(ranked)[:k]) else 0.0


RETRIEVAL_METRICS = {
    "ndcg@10": lambda ranked, rel: ndcg_at_k(ranked, rel, 10),
    "recall@10": lambda ranked, rel: recall_at_k(ranked, rel, 10),
    "recall@100": lambda ranked, rel: recall_at_k(ranked, rel, 100),
    "mrr@10": lambda ranked, rel: mrr_at_k(ranked, rel, 10),
}


def evaluate_run(run: Run, qrels: Qrels, metrics: Mapping = RETRIEVAL_METRICS) -> dict[str, float]:
    """Mean of each metric over the judged queries (those with a relevant document)."""
    judged = [qid for qid, rel in qrels.items() if any(r > 0 for r in rel.values())]
    per_query = {
        name: [metric(run.get(qid, ()), qrels[qid]) for qid in judged] for name, metric in metrics.items()
    }
    return {name: mean(values) for name, values in per_query.items()}


def unique(ids: Iterable[str]) -> list[str]:
    """The ids in order of first occurrence (chunks of one document collapse to its best rank)."""
    return list(dict.fromkeys(ids))


# --- answers ---------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)
CITATION_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def strip_citations(text: str) -> str:
    """The answer without its [n] / [1, 2] citation markers."""
    return CITATION_MARKER.sub("", text).strip()


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, gold: str) -> float:
    """1.0 when the normalised gold answer appears in the normalised prediction as whole words
    (a lenient check for long, chatty answers: "Yes, Lincoln was..." contains "yes")."""
    gold_norm = normalize_answer(gold)
    if not gold_norm:
        return 0.0
    return float(f" {gold_norm} " in f" {normalize_answer(prediction)} ")


def answer_scores(prediction: str, golds: str | Sequence[str]) -> dict[str, float]:
    """EM, F1 and containment of one answer, best over the gold answers; markers are stripped."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    prediction = strip_citations(prediction)
    if not golds:
        return {"exact_match": 0.0, "f1": 0.0, "contains_answer": 0.0}
    return {
        "exact_match": max(exact_match(prediction, gold) for gold in golds),
        "f1": max(token_f1(prediction, gold) for gold in golds),
        "contains_answer": max(contains_answer(prediction, gold) for gold in golds),
    }


def citations_valid(citations: Sequence[Mapping], given: Mapping[int, Iterable]) -> bool:
    """Every citation points into a passage that was in the prompt: its number was given and
    its chunk ids are among that passage's chunks. `given` maps passage number -> the ids of
    the chunks the passage was made of (a passage can be a whole document).

    A sanity check only: the pipeline cannot cite a passage it did not give the model, so this
    is true by construction. Whether a cited passage supports its sentence is the citation
    checker's job; its precision and recall are measured by bench/citations.py on
    docs/evaluation/citation_pairs.jsonl (assistant/rag/evaluation/citations.py)."""
    for citation in citations:
        n = citation.get("n")
        chunk_ids = {str(c) for c in citation.get("chunk_ids") or ()}
        if n not in given or not chunk_ids or not chunk_ids <= {str(c) for c in given[n]}:
            return False
    return True


# --- aggregation ---------------------------------------------------------------------------------


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def mean_of(rows: Sequence[Mapping[str, float]], keys: Iterable[str] | None = None) -> dict[str, float]:
    """Per-key mean over rows, skipping rows where the key is missing or None."""
    keys = list(keys) if keys is not None else list(dict.fromkeys(k for row in rows for k in row))
    return {key: mean(row[key] for row in rows if row.get(key) is not None) for key in keys}


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# --- baselines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regression:
    """A metric that fell more than the tolerance below its baseline (current None: missing)."""

    metric: str
    baseline: float
    current: float | None
    tolerance: float

    @property
    def drop(self) -> float | None:
        return None if self.current is None else self.baseline - self.current

    def __str__(self) -> str:
        if self.current is None:
            return f"{self.metric}: missing (baseline {self.baseline:.4f})"
        return (
            f"{self.metric}: {self.current:.4f} < baseline {self.baseline:.4f} "
            f"(-{self.drop:.4f}, tolerance {self.tolerance:.4f})"
        )


def flatten(metrics: Mapping, prefix: str = "") -> dict[str, float]:
    """{"hybrid": {"ndcg@10": 0.7}} -> {"hybrid.ndcg@10": 0.7}; non-numbers are left out."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def compare(results: Mapping, baseline: Mapping, tolerance: float) -> list[Regression]:
    """Metrics (higher is better) that fell more than `tolerance` (absolute) below the baseline.

    Both arguments are reports or their "metrics" sections; every metric of the baseline is
    checked, and one missing from the results counts as a regression.
    """
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    current = flatten(results.get("metrics", results))
    expected = flatten(baseline.get("metrics", baseline))
    regressions = []
    for name, base in sorted(expected.items()):
        value = current.get(name)
        # A tiny epsilon keeps float noise at exactly the tolerance from failing a build.
        if value is None or value < base - tolerance - 1e-9:
            regressions.append(Regression(metric=name, baseline=base, current=value, tolerance=tolerance))
    return regressions


# --- presentation ------------------------------------------------------------------------------------


def format_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] | None = None,
                 label: str = "mode") -> str:
    """A plain-text table: one row per key of `rows` (e.g. modes), one column per metric."""
    columns = list(columns or dict.fromkeys(c for row in rows.values() for c in row))
    first = max([len(name) for name in rows] + [len(label)])
    widths = [max(len(c), 6) for c in columns]
    header = label.ljust(first) + "  " + "  ".join(c.rjust(w) for c, w in zip(columns, widths))
    lines = [header, "-" * len(header)]
    for name, row in rows.items():
        cells = []
        for column, width in zip(columns, widths):
            value = row.get(column)
            cells.append(("-" if value is None else f"{value:.4f}").rjust(width))
        lines.append(name.ljust(first) + "  " + "  ".join(cells))
    return "\n".join(lines)
