"""The citation checker, measured on labelled (sentence, passage) pairs in English and French.

docs/evaluation/citation_pairs.jsonl holds correct citations, same-topic and unrelated
passages, and sentences that misstate their passage, written from the sample handbook;
`bench/citations.py` prints the full report. The floors below are the values measured when
the checker learnt French (December 2026) minus a small margin: a change that makes the
checker keep wrong citations or drop right ones fails here.
"""

from __future__ import annotations

import pytest

from assistant.rag.evaluation.citations import checker_keeps, load_pairs, score
from assistant.rag.citations import finalize_answer
from assistant.rag.retrieval import Passage

# Measured: overall P 0.800 R 0.990; en P 0.779 R 1.0; fr P 0.810 R 1.0; fr-en P 0.90 R 0.90.
FLOORS = {
    "overall": (0.77, 0.96),
    "en": (0.75, 0.97),
    "fr": (0.78, 0.97),
    "fr-en": (0.80, 0.80),
}

HANDBOOK_EN = (
    "Full-time employees receive 27 days of paid annual leave per calendar year, on top of public holidays at "
    "their place of work. Part-time employees receive the same entitlement pro rata to the days they work per week."
)
HANDBOOK_FR = (
    "Les salariés à temps plein bénéficient de 27 jours de congés payés par année civile, en plus des jours fériés "
    "de leur lieu de travail."
)
SICK_LEAVE_EN = (
    "If you are ill, tell your manager before 10:00 on the first day. A doctor's certificate is needed from the "
    "fourth calendar day of illness; upload it in Harbor."
)


def passage(n: int, text: str, title: str) -> Passage:
    return Passage(
        n=n, chunk_id=n, document_id=f"00000000-0000-0000-0000-{n:012d}", title=title, location="", url="",
        connector="Handbook", text=text, start_char=0, end_char=len(text),
    )


@pytest.fixture(scope="module")
def report() -> dict:
    return score(load_pairs())


def test_the_labelled_set_is_large_balanced_and_bilingual():
    pairs = load_pairs()
    assert len(pairs) >= 120
    correct = sum(p["supports"] for p in pairs)
    assert 0.4 <= correct / len(pairs) <= 0.6
    assert sum(p["lang"].startswith("fr") for p in pairs) >= 40
    assert len({p["id"] for p in pairs}) == len(pairs)


@pytest.mark.parametrize("bucket", list(FLOORS))
def test_the_checker_keeps_its_precision_and_recall(settings, report, bucket):
    settings.ROOT_URLCONF = "assistant.urls"
    measured = report["overall"] if bucket == "overall" else report["by_language"][bucket]
    precision_floor, recall_floor = FLOORS[bucket]
    assert measured["precision"] >= precision_floor, measured
    assert measured["recall"] >= recall_floor, measured


def test_it_never_keeps_a_citation_to_an_unrelated_passage(report):
    assert report["kept_rate_by_kind"]["other_topic"] == 0.0


def test_a_correct_french_answer_keeps_its_citation(settings):
    settings.ROOT_URLCONF = "assistant.urls"
    # A French answer about the (English) handbook, the way French speakers use it.
    html, citations = finalize_answer(
        "Vous avez droit à 27 jours de congés payés par an [1].",
        [passage(1, HANDBOOK_EN, "Employee handbook"), passage(2, SICK_LEAVE_EN, "Employee handbook")],
    )
    assert [c["n"] for c in citations] == [1]
    assert 'data-n="1"' in html
    # And about a French document, with elisions, accents and other inflections than the source's.
    html, citations = finalize_answer(
        "D'après le manuel, l'employé à temps plein bénéficie de 27 jours de congé payé chaque année [1].",
        [passage(1, HANDBOOK_FR, "Manuel du salarié")],
    )
    assert [c["n"] for c in citations] == [1]


def test_a_french_answer_citing_the_wrong_passage_loses_the_marker():
    assert not checker_keeps(
        "Un certificat médical est nécessaire dès le quatrième jour d'arrêt maladie.", HANDBOOK_FR, "Manuel du salarié"
    )
