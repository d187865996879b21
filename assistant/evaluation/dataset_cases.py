"""A public question-answer set as evaluation cases: the questions `evaluate answers` asked (the
same seeded sample), each expecting its gold answers and its document in the corpus's connector."""

from __future__ import annotations

import json
import random

from assistant.evaluation.cases_io import cases_import
from assistant.evaluation.models import EvaluationCase
from assistant.rag.evaluation.datasets import corpus_titles, read_qa


def qa_case_rows(*, corpus_file, qa_file, limit: int, seed: int, connector: str) -> list[dict]:
    pairs = read_qa(qa_file)
    rng = random.Random(seed)
    picked = [pairs[i] for i in rng.sample(range(len(pairs)), min(limit, len(pairs)))]
    titles = corpus_titles(corpus_file)
    return [{"id": pair.get("id") or "", "question": pair["question"], "answer": pair["answers"],
             "sources": [{"kind": "document", "connector": connector, "external_id": pair["doc_id"],
                          "title": titles.get(pair["doc_id"], "")}]} for pair in picked]


def save_qa_cases(options: dict, *, tag: str) -> tuple[int, int]:
    """Save the questions of `evaluate answers` (its parsed options) as cases tagged `tag`."""
    corpus_file = options["corpus"].expanduser().resolve()
    rows = qa_case_rows(corpus_file=corpus_file, qa_file=options["qa"].expanduser().resolve(),
                        limit=options["limit"], seed=options["seed"],
                        connector=" ".join((options.get("name") or f"evaluation: {corpus_file.stem}").split()))
    return cases_import((json.dumps(row) for row in rows), user=None, tags=[tag],
                        origin=EvaluationCase.Origin.DATASET)
