"""The Debian Administrator's Handbook loader, on pages cut from the book (tests/rag/fixtures/debian-handbook)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.rag.evaluation.datasets import EvaluationError, read_qrels, read_queries
from assistant.rag.evaluation.handbook import (
    QUESTIONS_DIR,
    handbook_corpus,
    handbook_html_dir,
    handbook_sections,
    handbook_write_corpus,
)

FIXTURES = Path(__file__).parent / "fixtures" / "debian-handbook"


@pytest.fixture
def sections():
    return {section.id: section for section in handbook_sections(FIXTURES / "en-US")}


def test_every_section_with_text_is_a_document_keyed_by_its_anchor(sections):
    # The book's order: the chapter page (linked first from index.html), then the section page.
    assert list(sections) == ["apt", "sect.apt-sources.list", "id-1.9.16.6", "sect.apt-get", "sect.apt-update",
                              "sect.apt.install"]
    # "System Upgrade" has a heading but no text of its own: no document.
    assert "sect.apt-upgrade" not in sections


def test_the_title_is_the_heading_chain_without_numbers_across_pages(sections):
    assert sections["apt"].title == "Maintenance and Updates: The APT Tools"
    assert sections["id-1.9.16.6"].title == "Maintenance and Updates: The APT Tools › Filling in the sources.list File › Syntax"
    # The section page's chapter lies in another page (its <link rel="up">).
    assert sections["sect.apt-update"].title == (
        "Maintenance and Updates: The APT Tools › aptitude, apt-get, and apt Commands › Initialization"
    )


def test_a_section_keeps_its_own_text_without_its_subsections_or_table_of_contents(sections):
    chapter = sections["apt"].text
    assert chapter.startswith("What makes Debian so popular")
    assert "6.1.1" not in chapter and "sources.list File" not in chapter  # no table of contents, no subsection
    parent = sections["sect.apt-sources.list"].text
    assert "/etc/apt/sources.list will list the different repositories" in parent
    assert "three parts separated by spaces" not in parent  # that is the subsection's text


def test_paragraphs_sidebars_lists_and_listings_become_blocks(sections):
    text = sections["sect.apt.install"].text
    assert text.split("\n\n") == [
        "The apt purge package command involves a complete uninstallation by deleting the configuration files as well.",
        "TIP Installing the same selection of packages several times",  # the sidebar's title is kept
        "First, retrieve the list of packages installed on the computer which will serve as the “model” to copy.",
        "$ dpkg --get-selections >pkg-list",
        "apt remove removes a package;",
        "apt purge removes its configuration files too.",
    ]
    listing = sections["id-1.9.16.6"].text.split("\n\n")[-1]
    assert listing == "deb url distribution component1\ndeb-src url distribution component1"  # lines kept


def test_another_language_gives_the_same_ids_with_its_own_headings():
    french = handbook_sections(FIXTURES / "fr-FR")
    assert [s.id for s in french] == ["apt", "sect.apt-sources.list", "id-1.9.16.6"]
    # "Chapitre 6." and "6.1." go, whatever the language's word for a chapter.
    assert french[0].title == "Maintenance et mise à jour : les outils APT"
    assert french[2].title == "Maintenance et mise à jour : les outils APT › Renseigner le fichier sources.list › Syntaxe"
    assert french[0].text.startswith("Ce qui fait le succès de Debian")


def test_the_corpus_file_is_json_lines_and_rewritten_only_when_it_changes(sections, tmp_path):
    target = handbook_write_corpus(list(sections.values()), tmp_path / "hb.jsonl")
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["_id"] for row in rows] == list(sections)
    assert set(rows[0]) == {"_id", "title", "text", "file"}
    written = target.stat().st_mtime_ns
    handbook_write_corpus(list(sections.values()), target)
    assert target.stat().st_mtime_ns == written


def test_an_unknown_edition_or_a_bad_code_is_refused_with_what_exists():
    with pytest.raises(EvaluationError, match="available: en-US, fr-FR"):
        handbook_html_dir("de-DE", FIXTURES)
    with pytest.raises(EvaluationError, match="a code like en-US"):
        handbook_html_dir("../etc", FIXTURES)


def test_the_judged_corpus_pairs_the_edition_with_the_questions(tmp_path, settings):
    corpus = handbook_corpus("en-US", html_root=FIXTURES, work_dir=tmp_path)
    assert corpus.dataset == "debian-handbook-en-US"
    assert corpus.corpus_file == tmp_path / "debian-handbook-en-US.jsonl" and corpus.corpus_file.is_file()
    assert corpus.queries_file == QUESTIONS_DIR / "queries.jsonl"
    assert corpus.data_roots == (str(tmp_path),)


def test_the_questions_are_judged_against_sections_of_the_book():
    queries = read_queries(QUESTIONS_DIR / "queries.jsonl")
    qrels = read_qrels(QUESTIONS_DIR / "qrels" / "test.tsv")
    assert len(queries) >= 60 and set(qrels) == set(queries)
    assert all(max(grades.values()) == 2 for grades in qrels.values())  # each has a section that answers it
    assert {grade for grades in qrels.values() for grade in grades.values()} == {1, 2}
    book = Path("/usr/share/doc/debian-handbook/html/en-US")
    if book.is_dir():  # scripts/provision_system.sh installs it
        ids = {section.id for section in handbook_sections(book)}
        assert {doc for grades in qrels.values() for doc in grades} <= ids
