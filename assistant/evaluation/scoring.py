"""Scoring one answer against its case: pure functions, no database.

Every metric is in [0, 1], higher is better, or None where the case does not ask for it (a case
without expected sources has no "source retrieved"). A case passes when every check it asks for
is fully met; token F1 and the judge's grades are scores, shown and compared with the baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.rag.evaluation.metrics import normalize_answer, strip_citations, token_f1

#: The metrics a run averages and compares with its baseline (all: higher is better).
QUALITY_METRICS = (
    "passed", "source_retrieved", "source_cited", "citation_validity", "must_contain", "must_not_contain",
    "refusal", "f1", "judge_faithfulness", "judge_agreement",
)
#: Metrics that are checks: a case fails when one of them is below 1.
CHECKS = ("source_retrieved", "source_cited", "citation_validity", "must_contain", "must_not_contain", "refusal")
JUDGE_PASS = 0.5  # a judge's grade below this (2 of 5 or less) fails the case

MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
#: How answers say that the documents do not hold the answer, in English and French.
REFUSAL = re.compile(
    r"(could ?n[o']?t|can ?n[o']?t|did ?n[o']?t|unable to|was not able to|wasn'?t able to)\s+(find|locate|see)"
    r"|not (?:\w+ ){0,3}in the (?:\w+ ){0,2}(documents|sources)|no (relevant )?(information|document|mention)"
    r"|(do|does) not (contain|mention|say)|i don'?t know"
    r"|n'ai pas (pu )?trouv|ne trouve pas|pas (été )?trouv|ne (contiennent|mentionnent|disent) pas"
    r"|aucune information|aucun document|je ne sais pas",
    re.IGNORECASE,
)


@dataclass
class Expected:
    answers: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    must_contain: list[str] = field(default_factory=list)
    must_not_contain: list[str] = field(default_factory=list)
    expect_refusal: bool = False


@dataclass
class Observed:
    """What the pipeline did. `sources`: the documents the answer saw, each {"connector",
    "external_id", "title", "cited"}; `queries`: the database queries it ran, each {"connector",
    "ok"}; `written`: the citation numbers the model wrote; `kept`: those that survived the check."""

    answer: str
    sources: list[dict] = field(default_factory=list)
    queries: list[dict] = field(default_factory=list)
    written: set[int] = field(default_factory=set)
    kept: set[int] = field(default_factory=set)
    error: str = ""


def is_refusal(answer: str) -> bool:
    return bool(REFUSAL.search(answer or ""))


def _folded(text: str) -> str:
    return " ".join(str(text or "").casefold().split())


def contains(answer: str, phrase: str) -> bool:
    """Case and spacing do not matter; punctuation and articles do not either where the phrase has words."""
    if _folded(phrase) in _folded(answer):
        return True
    normal = normalize_answer(phrase)
    return bool(normal) and f" {normal} " in f" {normalize_answer(answer)} "


def _same_source(expected: dict, seen: dict) -> bool:
    """The same document: the same id in its source, or the same title (a corpus can hold one
    article twice); within the expected connector when it names one."""
    if expected.get("connector") and seen.get("connector") and expected["connector"] != seen["connector"]:
        return False
    if expected.get("external_id") and expected.get("external_id") == seen.get("external_id"):
        return True
    title = normalize_answer(str(expected.get("title") or ""))
    return bool(title) and title == normalize_answer(str(seen.get("title") or ""))


def _source_found(expected: dict, observed: Observed, *, cited: bool) -> bool:
    if expected.get("kind") == "query":
        return any(q.get("ok") and q.get("connector") == expected.get("connector") for q in observed.queries)
    return any(_same_source(expected, seen) and (seen.get("cited") or not cited) for seen in observed.sources)


def _fraction(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def written_citations(answer: str) -> set[int]:
    return {int(n) for match in MARKER.finditer(answer or "") for n in match.group(1).split(",")}


def score(expected: Expected, observed: Observed) -> dict[str, float | None]:
    answer = strip_citations(observed.answer)
    refused = is_refusal(answer)
    metrics = {
        "source_retrieved": _fraction([_source_found(s, observed, cited=False) for s in expected.sources]),
        "source_cited": _fraction([_source_found(s, observed, cited=True) for s in expected.sources]),
        # The [n] the model wrote that point at a passage it was given and that supports the sentence.
        "citation_validity": (len(observed.written & observed.kept) / len(observed.written)) if observed.written
        else None,
        "must_contain": _fraction([contains(answer, p) for p in expected.must_contain]),
        "must_not_contain": _fraction([not contains(answer, p) for p in expected.must_not_contain]),
        # Refusing when the documents hold the answer is as wrong as inventing one when they do not.
        "refusal": float(refused == expected.expect_refusal) if (expected.expect_refusal or expected.answers) else None,
        "f1": max((token_f1(answer, gold) for gold in expected.answers), default=None)
        if expected.answers and not expected.expect_refusal else None,
    }
    if expected.expect_refusal:
        metrics["source_retrieved"] = metrics["source_cited"] = None
    return metrics


def failures(metrics: dict[str, float | None], *, error: str = "") -> list[str]:
    """The checks a case failed (its error first: an answer that failed fails every check)."""
    failed = ["error"] if error else []
    failed += [name for name in CHECKS if metrics.get(name) is not None and metrics[name] < 1.0]
    failed += [name for name in ("judge_faithfulness", "judge_agreement")
               if metrics.get(name) is not None and metrics[name] < JUDGE_PASS]
    return failed


def means(rows: list[dict[str, float | None]], names=QUALITY_METRICS) -> dict[str, float]:
    """Each metric's mean over the rows that have it (rounded to 4 places)."""
    out = {}
    for name in names:
        values = [row[name] for row in rows if row.get(name) is not None]
        if values:
            out[name] = round(sum(values) / len(values), 4)
    return out
