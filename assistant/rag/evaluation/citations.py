"""How well the citation checker tells a passage that supports a sentence from one that does not.

`citations.verify_citations` keeps an [n] marker only when its passage supports the sentence.
"Citation validity" in `evaluate answers` cannot measure that (a citation can only point to a
passage the model was given); this scores the checker itself on a labelled set of
(sentence, passage) pairs, docs/evaluation/citation_pairs.jsonl:

    {"id", "lang", "sentence", "title", "passage", "supports": true|false, "kind"}

`kind` says why a pair is correct or wrong: "correct", "same_topic" (a passage on the same
subject that does not state the sentence's fact), "other_topic", "wrong_detail" (the right
passage, a sentence that misstates it). Each pair is checked as the model would write it,
"sentence [1].", with that one passage given. A kept marker is a positive: precision is the
share of kept markers whose passage supports the sentence, recall the share of supporting
passages whose marker is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from assistant.rag.citations import verify_citations
from assistant.rag.retrieval import Passage

PAIRS_PATH = Path(__file__).resolve().parents[3] / "docs" / "evaluation" / "citation_pairs.jsonl"


def load_pairs(path: Path = PAIRS_PATH) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def cited(sentence: str) -> str:
    """The sentence as a model cites it: the marker before the final full stop."""
    sentence = sentence.rstrip()
    return f"{sentence[:-1]} [1]." if sentence.endswith(".") else f"{sentence} [1]"


def checker_keeps(sentence: str, passage: str, title: str = "") -> bool:
    """Whether the checker keeps the [1] of `sentence` citing `passage`."""
    given = Passage(
        n=1, chunk_id=1, document_id="pair", title=title, location="", url="", connector="", text=passage,
        start_char=0, end_char=len(passage),
    )
    remarked, _ = verify_citations(cited(sentence), [given])
    return "[1]" in remarked


def _scores(judged: list[tuple[dict, bool]]) -> dict:
    tp = sum(1 for pair, kept in judged if kept and pair["supports"])
    fp = sum(1 for pair, kept in judged if kept and not pair["supports"])
    fn = sum(1 for pair, kept in judged if not kept and pair["supports"])
    tn = len(judged) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": len(judged), "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def score(pairs: Iterable[dict]) -> dict:
    """Precision and recall of the checker, overall, per language and per kind of pair, with
    the ids it got wrong."""
    judged = [(pair, checker_keeps(pair["sentence"], pair["passage"], pair.get("title", ""))) for pair in pairs]
    languages = sorted({pair["lang"] for pair, _ in judged})
    kinds = sorted({pair["kind"] for pair, _ in judged})
    return {
        "overall": _scores(judged),
        "by_language": {lang: _scores([j for j in judged if j[0]["lang"] == lang]) for lang in languages},
        "kept_rate_by_kind": {
            kind: round(sum(kept for pair, kept in judged if pair["kind"] == kind)
                        / sum(1 for pair, _ in judged if pair["kind"] == kind), 4)
            for kind in kinds
        },
        "wrongly_kept": [pair["id"] for pair, kept in judged if kept and not pair["supports"]],
        "wrongly_dropped": [pair["id"] for pair, kept in judged if not kept and pair["supports"]],
    }
