"""Answers to question-answer pairs, asked through the chat pipeline and scored: source hits,
exact match / F1 against the gold answers, citation validity, latency.

The pipeline comes in as `ask(question) -> Answered` (the chat layer supplies it: this package
sits below the chat and never imports it), so the scores are those of the code the chat runs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from assistant.rag.evaluation import metrics as ev
from assistant.rag.evaluation.corpus import Corpus, corpus_ingest, corpus_remove, index_settings
from assistant.rag.evaluation.datasets import EvaluationError, read_qa
from connectors.models import Connector, Document

COLUMNS = (
    "source_hit", "source_hit_title", "retrieval_hit", "exact_match", "f1", "contains_answer", "citation_validity"
)


@dataclass
class Answered:
    """What the pipeline did with one question."""

    content: str
    status: str
    error: str | None
    citations: list
    passages: list  # the passages put into the prompt
    first_token_ms: int | None


def answers_evaluate(*, corpus_file: Path, qa_file: Path, limit: int, seed: int, name: str | None, keep: bool,
                     progress_seconds: float, ask: Callable[[str], Answered], llm: dict, log) -> dict:
    corpus_file, qa_file = corpus_file.expanduser().resolve(), qa_file.expanduser().resolve()
    for path in (corpus_file, qa_file):
        if not path.is_file():
            raise EvaluationError(f"{path} does not exist")
    pairs = read_qa(qa_file)
    if not pairs:
        raise EvaluationError(f"No usable lines (question, answer, doc_id) in {qa_file}")
    rng = random.Random(seed)
    picked = [pairs[i] for i in rng.sample(range(len(pairs)), min(limit, len(pairs)))]
    corpus = corpus_ingest(corpus_file, name or f"evaluation: {corpus_file.stem}",
                           progress_seconds=progress_seconds, log=log)
    others = Connector.objects.exclude(id=corpus.connector.id).filter(documents__isnull=False).distinct().count()
    if others:
        log(f"warning: {others} other connector(s) hold documents in this database; the chat pipeline "
            "retrieves from everything the evaluator may see, so use a database of its own.")
    items: list[dict] = []
    try:
        for number, pair in enumerate(picked, start=1):
            asked = time.monotonic()
            answered = ask(pair["question"])
            items.append(_score(pair, answered, time.monotonic() - asked, corpus))
            item = items[-1]
            log(f"[{number}/{len(picked)}] hit={int(item['source_hit'])} f1={item['f1']:.2f} "
                f"{item['latency_s']:.1f}s {pair['question'][:70]!r}")
    finally:
        corpus_remove(corpus, keep=keep, log=log)
    return _report(items, corpus, corpus_file, qa_file, seed, llm)


def _report(items: list[dict], corpus: Corpus, corpus_file: Path, qa_file: Path, seed: int, llm: dict) -> dict:
    answered = [i for i in items if not i["error"]]
    with_citations = [i for i in items if i["citations"]]
    metrics = {key: ev.mean(i[key] for i in items) for key in COLUMNS if key != "citation_validity"}
    # Over answers that cite anything; an answer without citations cannot cite wrongly. True by
    # construction for the passages given (see bench/citations.py for the checker's own figures).
    metrics["citation_validity"] = (
        ev.mean(float(i["citations_valid"]) for i in with_citations) if with_citations else 1.0
    )
    latencies = [i["latency_s"] for i in answered]
    first_tokens = [i["first_token_ms"] for i in answered if i["first_token_ms"] is not None]
    return {
        "kind": "answers",
        "dataset": corpus_file.stem,
        "qa": qa_file.name,
        "questions": len(items),
        "seed": seed,
        "corpus": corpus.summary,
        "metrics": {k: round(v, 4) for k, v in metrics.items()},
        "counts": {
            "questions": len(items), "answered": len(answered), "errors": len(items) - len(answered),
            "with_citations": len(with_citations),
            "gold_document_missing": sum(1 for i in items if not i["gold_in_corpus"]),
        },
        "latency": {
            "median_s": _round(ev.median(latencies)),
            "p90_s": _round(ev.percentile(latencies, 90)),
            "median_first_token_ms": _round(ev.median(first_tokens), 0),
        },
        "settings": {
            **index_settings(),
            "llm_base_url": llm["LLM_BASE_URL"], "llm_model": llm["LLM_MODEL"], "llm_max_tokens": llm["LLM_MAX_TOKENS"],
            "llm_temperature": settings.LLM_TEMPERATURE,
            "passages_per_question": settings.RAG_TOP_K,
            "context_tokens": settings.RAG_CONTEXT_TOKENS,
            "search_mode": settings.RAG_SEARCH_MODE,
        },
        "timing": {"ingest_s": corpus.summary["seconds"]},
        "items": items,
    }


def _score(pair: dict, answered: Answered, latency: float, corpus: Corpus) -> dict:
    citations, passages = answered.citations or [], answered.passages
    document_ids = {str(p.document_id) for p in passages} | {str(c.get("document_id")) for c in citations}
    external = {
        str(doc_id): ext for doc_id, ext in Document.objects.filter(id__in=document_ids).values_list("id", "external_id")
    }
    cited_docs = list(dict.fromkeys(external.get(str(c.get("document_id")), "?") for c in citations))
    retrieved_docs = list(dict.fromkeys(external.get(str(p.document_id), "?") for p in passages))
    gold_title = corpus.titles.get(pair["doc_id"])
    cited_titles = {corpus.titles.get(doc) for doc in cited_docs}
    return {
        "id": pair.get("id"),
        "question": pair["question"],
        "gold_answers": pair["answers"],
        "gold_doc_id": pair["doc_id"],
        "gold_in_corpus": pair["doc_id"] in corpus.titles,
        "answer": answered.content[:2000],
        "status": answered.status,
        "error": answered.error,
        "cited_documents": cited_docs,
        "retrieved_documents": retrieved_docs,
        "citations": len(citations),
        "citations_valid": ev.citations_valid(citations, {p.n: _chunk_ids(p) for p in passages}),
        "source_hit": float(pair["doc_id"] in cited_docs),
        # A corpus can hold the same article twice (the CMU data has each article once per
        # year): citing a document with the gold document's title counts here.
        "source_hit_title": float(pair["doc_id"] in cited_docs or bool(gold_title and gold_title in cited_titles)),
        "retrieval_hit": float(pair["doc_id"] in retrieved_docs),
        **ev.answer_scores(answered.content, pair["answers"]),
        "latency_s": round(latency, 2),
        "first_token_ms": answered.first_token_ms,
    }


def _chunk_ids(passage) -> set:
    """The chunks a passage given to the model was made of (its hit, and its neighbours or whole document)."""
    return {passage.chunk_id, *(segment.chunk_id for segment in getattr(passage, "segments", ()) or ())}


def _round(value, digits: int = 2):
    return None if value is None else round(value, digits)
