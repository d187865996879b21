"""The sources stored under an answer: one per document given, cited ones first, a short excerpt."""

from __future__ import annotations

import uuid

from assistant.rag.citations import finalize_answer
from assistant.rag.context import Segment
from assistant.rag.retrieval import Passage
from assistant.rag.sources import PASSAGE_CHARS, sources_record

HANDBOOK, TRAVEL, NOTES = (str(uuid.uuid4()) for _ in range(3))


def passage(n: int, document_id: str, title: str, text: str, *, chunk_id: int | None = None, segments=(),
            kind: str = "document") -> Passage:
    return Passage(
        n=n, chunk_id=chunk_id or n, document_id=document_id, title=title, location=f"/srv/{title}", url="",
        connector="Attached file" if kind == "attachment" else "Handbook", text=text, start_char=0,
        end_char=len(text), segments=segments, kind=kind,
    )


def test_each_document_is_listed_once_cited_ones_first_in_the_order_they_are_cited():
    passages = [
        passage(1, HANDBOOK, "Handbook", "Full-time employees receive 27 days of paid annual leave."),
        passage(2, TRAVEL, "Travel policy", "Trains are booked in second class for trips under four hours."),
        passage(3, HANDBOOK, "Handbook", "Part-time employees receive leave pro rata."),
        passage(4, NOTES, "notes.md", "Orion launches from Kourou in March.", kind="attachment"),
    ]
    answer = "Orion launches from Kourou in March [4]. Full-time employees receive 27 days of paid annual leave [1]."
    _, citations = finalize_answer(answer, passages)
    sources = sources_record(passages, citations)
    assert [(s["title"], s["n"], s["cited"]) for s in sources] == [
        ("notes.md", 4, True), ("Handbook", 1, True), ("Travel policy", 2, False),
    ]
    assert sources[0]["kind"] == "attachment" and sources[0]["url"].startswith("/chat/attachments/")
    assert sources[2]["url"].startswith(f"/chat/documents/{TRAVEL}/")
    assert sources[2]["passage"] == "Trains are booked in second class for trips under four hours."
    assert set(sources[0]) == {"n", "title", "url", "connector", "document_id", "kind", "passage", "cited"}


def test_nothing_cited_still_lists_every_document_given_in_rank_order():
    passages = [passage(1, TRAVEL, "Travel policy", "Trains."), passage(2, HANDBOOK, "Handbook", "Leave.")]
    assert [s["title"] for s in sources_record(passages, [])] == ["Travel policy", "Handbook"]
    assert sources_record([], []) == []


def test_a_whole_document_shows_its_best_chunk_short_and_without_markdown_marks():
    intro = "# Handbook\n\nWelcome to Northwind. " * 5
    hit = "## Annual leave\n\nFull-time employees receive **27 days** of paid annual leave " + "and more " * 60
    text = intro + hit
    whole = passage(1, HANDBOOK, "Handbook", text, chunk_id=8,
                    segments=(Segment(7, 0, len(intro)), Segment(8, len(intro), len(text))))
    excerpt = sources_record([whole], [])[0]["passage"]
    assert excerpt.startswith("Annual leave Full-time employees receive 27 days of paid annual leave")
    assert len(excerpt) <= PASSAGE_CHARS + 1 and excerpt.endswith("…")
    assert "#" not in excerpt and "**" not in excerpt
