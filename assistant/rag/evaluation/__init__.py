"""Measuring the assistant: metrics (pure functions), public data sets, the retrieval and answer
harnesses that run them through the real pipeline, and the reports and baselines CI gates on.

`manage.py evaluate` (assistant/chat/management/commands/evaluate.py) is the shell around them.
"""

from assistant.rag.evaluation.metrics import (
    dcg,
    ndcg_at_k,
    recall_at_k,
    mrr_at_k,
    hit_at_k,
    RETRIEVAL_METRICS,
    evaluate_run,
    unique,
    CITATION_MARKER,
    normalize_answer,
    strip_citations,
    exact_match,
    token_f1,
    contains_answer,
    answer_scores,
    citations_valid,
    mean,
    mean_of,
    median,
    percentile,
    Regression,
    flatten,
    compare,
    format_table,
)

__all__ = [
    "dcg",
    "ndcg_at_k",
    "recall_at_k",
    "mrr_at_k",
    "hit_at_k",
    "RETRIEVAL_METRICS",
    "evaluate_run",
    "unique",
    "CITATION_MARKER",
    "normalize_answer",
    "strip_citations",
    "exact_match",
    "token_f1",
    "contains_answer",
    "answer_scores",
    "citations_valid",
    "mean",
    "mean_of",
    "median",
    "percentile",
    "Regression",
    "flatten",
    "compare",
    "format_table",
]
