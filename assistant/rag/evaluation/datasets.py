"""Reading public evaluation data: BEIR corpora, queries and qrels, question-answer pairs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from assistant.rag.evaluation.metrics import normalize_answer


class EvaluationError(ValueError):
    """Input an evaluation cannot use; the message says what to fix."""


def read_jsonl(path: Path):
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise EvaluationError(f"{path} line {number} is not JSON: {exc}") from None


def read_queries(path: Path) -> dict[str, str]:
    return {str(row["_id"]): row["text"] for row in read_jsonl(path) if str(row.get("text", "")).strip()}


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: tab-separated `query-id corpus-id score`, with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and not parts[-1].strip().lstrip("-").isdigit()):
                continue  # blank, or the header
            if len(parts) != 3:
                raise EvaluationError(f"{path} line {number}: expected 'query-id<TAB>corpus-id<TAB>score'")
            qid, doc_id, score = (p.strip() for p in parts)
            try:
                qrels.setdefault(qid, {})[doc_id] = int(float(score))
            except ValueError:
                raise EvaluationError(f"{path} line {number}: the score {score!r} is not a number") from None
    return qrels


def read_qa(path: Path) -> list[dict]:
    """Questions with their gold answers; a question asked of one document several times (answered
    by several people, as in the CMU data) becomes one question with several gold answers."""
    pairs: dict[tuple[str, str], dict] = {}
    for row in read_jsonl(path):
        question = " ".join(str(row.get("question") or "").split())
        answer = row.get("answer")
        answers = [a for a in (answer if isinstance(answer, list) else [answer]) if isinstance(a, str) and a.strip()]
        doc_id = row.get("doc_id")
        if not question or not answers or doc_id in (None, ""):
            continue
        pair = pairs.setdefault(
            (question.lower(), str(doc_id)), {"id": row.get("id"), "question": question, "answers": [], "doc_id": str(doc_id)}
        )
        pair["answers"].extend(a for a in answers if a not in pair["answers"])
    return list(pairs.values())


def corpus_titles(path: Path) -> dict[str, str]:
    """External id -> normalised title of every line of a JSON Lines corpus (_id, title)."""
    titles = {}
    for row in read_jsonl(path):
        if isinstance(row, dict) and row.get("_id") not in (None, ""):
            titles[str(row["_id"]).strip()] = normalize_answer(str(row.get("title") or ""))
    return titles


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class JudgedCorpus:
    """A corpus with judged queries: what `evaluate retrieval` ingests and scores."""

    dataset: str  # the report's name for it, e.g. "scifact", "debian-handbook-en-US"
    corpus_file: Path  # JSON Lines: _id, title, text
    queries_file: Path  # JSON Lines: _id, text
    qrels_file: Path  # BEIR qrels: query-id, corpus-id, score
    split: str = "test"
    data_roots: tuple[str, ...] = ()  # folders the ingest may read besides CONNECTOR_DATA_DIR


def beir_corpus(root: Path, split: str = "test") -> JudgedCorpus:
    """A BEIR directory: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""
    root = root.expanduser().resolve()
    documents = root / "corpus.jsonl"
    if not documents.is_file() and (root / "corpus").is_dir():
        documents = root / "corpus"  # a folder of documents (HTML, …): ids are their paths under it
    corpus = JudgedCorpus(root.name, documents, root / "queries.jsonl", root / "qrels" / f"{split}.tsv", split,
                          (str(documents),) if documents.is_dir() else ())
    for path in (corpus.corpus_file, corpus.queries_file, corpus.qrels_file):
        if not path.exists():
            raise EvaluationError(
                f"{path} is missing: --beir needs corpus.jsonl (or a folder corpus/), queries.jsonl and qrels/<split>.tsv"
            )
    return corpus
