"""Contextual chunks through the real sync (folder, parsers, embedder, PostgreSQL): each chunk is
embedded and full-text indexed with its document's title and section headings, and stored as
the exact slice of the document that citations quote."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.rag.citations import citation_record
from assistant.rag.retrieval import retrieve
from connectors import indexing
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.search.fulltext import chunk_ids_fulltext
from connectors.sync import sync_run_execute

RECEIPTS = "Keep every receipt and upload a photo of it in the expenses tool within a week."
TRAINS = (
    "Train tickets are paid back at the second class fare; a first class ticket is paid back only "
    "when the trip takes more than four hours and your manager agreed before you booked it."
)
GUIDE = f"# Staff guide\n\nWhat every new colleague should know.\n\n## Reimbursement\n\n{RECEIPTS}\n\n{TRAINS}\n"
PAGE = (
    "<html><head><title>Office guide</title></head><body><h1>Office guide</h1><p>Welcome.</p>"
    "<h2>Parking</h2><p>Spaces are in the basement.</p><h3>Bicycles</h3><p>Racks by the door.</p></body></html>"
)


class RecordingEmbedder:
    def __init__(self, inner):
        self.inner, self.texts = inner, []

    def embed(self, texts):
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture
def embedded(monkeypatch) -> list[str]:
    recorder = RecordingEmbedder(indexing.get_embedder())
    monkeypatch.setattr("connectors.sync.get_embedder", lambda: recorder)
    return recorder.texts


@pytest.fixture
def small_chunks(settings):
    """Chunks of about one paragraph, so the second paragraph under a heading is a chunk of its own."""
    settings.CHUNK_TOKENS, settings.CHUNK_OVERLAP_TOKENS = 60, 0


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "guides"
    root.mkdir()
    (root / "staff-guide.md").write_text(GUIDE)
    (root / "office.html").write_text(PAGE)
    return root


def sync_folder(folder: Path) -> Connector:
    connector = Connector.objects.create(name="Guides", kind="folder", config={"path": str(folder)}, is_public=True)
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    return connector


def trains_chunk() -> Chunk:
    return Chunk.objects.get(document__external_id="staff-guide.md", text__startswith="Train tickets")


def test_a_chunk_is_embedded_under_its_title_and_section_and_stored_as_the_exact_slice(
    db, settings, folder, small_chunks, embedded
):
    settings.CHUNK_CONTEXT = "title,headings"
    sync_folder(folder)
    chunk = trains_chunk()
    assert chunk.text == TRAINS
    assert chunk.document.text[chunk.start_char : chunk.end_char] == chunk.text
    assert chunk.section == "Staff guide › Reimbursement"
    # The title ("Staff guide", the first heading) is not said twice.
    assert f"Staff guide › Reimbursement\n\n{TRAINS}" in embedded
    assert TRAINS not in embedded
    for stored in Chunk.objects.filter(document__connector__name="Guides"):
        assert stored.document.text[stored.start_char : stored.end_char] == stored.text


def test_html_headings_are_kept_with_the_document_and_the_chunk(db, settings, folder, embedded):
    settings.CHUNK_CONTEXT = "title,headings"
    sync_folder(folder)
    document = Document.objects.get(external_id="office.html")
    assert [(level, text) for _offset, level, text in document.headings] == [
        (1, "Office guide"), (2, "Parking"), (3, "Bicycles")
    ]
    for offset, _level, text in document.headings:
        assert document.text[offset : offset + len(text)] == text
    assert f"Office guide\n\n{document.text}" in embedded  # one chunk, starting with the h1


def test_full_text_finds_a_chunk_by_a_word_only_in_its_heading(db, settings, folder, small_chunks, embedded):
    settings.CHUNK_CONTEXT = "title,headings"
    sync_folder(folder)
    chunk = trains_chunk()
    assert "reimburse" not in chunk.text.lower()
    assert chunk.id in chunk_ids_fulltext(text="reimbursement", groups=[], k=10)


def test_without_context_the_chunk_alone_is_embedded_and_indexed(db, settings, folder, small_chunks, embedded):
    settings.CHUNK_CONTEXT = "none"
    sync_folder(folder)
    chunk = trains_chunk()
    assert TRAINS in embedded
    assert not any(text.endswith(TRAINS) and text != TRAINS for text in embedded)
    assert chunk.section == "Staff guide › Reimbursement"  # known, just not used
    assert chunk.id not in chunk_ids_fulltext(text="reimbursement", groups=[], k=10)
    assert chunk.id not in chunk_ids_fulltext(text="staff guide", groups=[], k=10)  # nor the title


def test_title_alone_leaves_the_headings_out(db, settings, folder, small_chunks, embedded):
    settings.CHUNK_CONTEXT = "title"
    sync_folder(folder)
    chunk = trains_chunk()
    assert f"Staff guide\n\n{TRAINS}" in embedded
    assert chunk.id in chunk_ids_fulltext(text="staff guide", groups=[], k=10)
    assert chunk.id not in chunk_ids_fulltext(text="reimbursement", groups=[], k=10)


def test_a_citation_still_quotes_the_exact_slice_of_the_document(db, settings, folder, small_chunks, embedded):
    settings.CHUNK_CONTEXT = "title,headings"
    sync_folder(folder)
    passages = retrieve(embedding=None, groups=[], query="first class ticket four hours", mode="fulltext", k=1,
                        material_tokens=1000)
    document = Document.objects.get(external_id="staff-guide.md")
    assert len(passages) == 1 and passages[0].document_id == str(document.id)
    passage = passages[0]
    assert passage.text == document.text[passage.start_char : passage.end_char]  # the document's own words
    record = citation_record(passage, inferred=False, answer="First class only for trips over four hours [1].")
    assert document.text[record["start"] : record["end"]] == record["quote"]
    assert TRAINS in record["quote"] and "›" not in record["quote"]
