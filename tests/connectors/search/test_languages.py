"""Retrieval in the document's own language: detection at indexing, the full-text vector in that
language's configuration, questions parsed in theirs, and fusion that leans on full text where
the embedding model does not know the question's language."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from connectors.chunk_store import chunks_search_vector_update
from connectors.models import Chunk, Connector, Document
from connectors.search import bm25, chunks_search
from connectors.search.fulltext import chunk_ids_fulltext
from connectors.search.hybrid import side_weights
from connectors.text_language import (
    detect_languages_setting, document_configuration, embedding_covers, embedding_languages_setting,
    question_configurations,
)
from tests.folders import folder_synced

FRENCH = (
    "# Gestion des paquets\n\nLes paquets Debian sont installés et mis à jour par APT. Avant toute mise en "
    "place, la liste des paquets disponibles est rafraîchie depuis les dépôts configurés.\n"
)
ENGLISH = (
    "# Package management\n\nDebian packages are installed and upgraded with APT. Before any "
    "installation, the list of available packages is refreshed from the configured repositories.\n"
)
GERMAN = (
    "# Paketverwaltung\n\nDebian-Pakete werden mit APT installiert und aktualisiert. Vor jeder "
    "Installation wird die Liste der verfügbaren Pakete aus den eingetragenen Quellen aktualisiert.\n"
)


@pytest.fixture(autouse=True)
def fresh_statistics():
    bm25.statistics_clear()
    yield
    bm25.statistics_clear()


def synced(root, pages: dict[str, str]) -> Connector:
    return folder_synced(root, pages)


@pytest.fixture
def manuals(db, tmp_path) -> Connector:
    return synced(tmp_path / "docs", {"fr.md": FRENCH, "en.md": ENGLISH, "de.md": GERMAN})


def language_of(external_id: str) -> str:
    return Document.objects.get(external_id=external_id).language


def found(text: str, k: int = 3) -> list[str]:
    ids = chunk_ids_fulltext(text=text, groups=[], k=k)
    names = dict(Chunk.objects.filter(id__in=ids).values_list("id", "document__external_id"))
    return [names[i] for i in ids]


def test_each_document_is_stored_with_its_detected_language(manuals):
    assert (language_of("fr.md"), language_of("en.md"), language_of("de.md")) == ("french", "english", "german")


def test_a_french_documents_vector_uses_french_stemming(manuals):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.search_vector @@ to_tsquery('french', 'installer'), c.search_vector::text "
            "FROM connectors_chunk c JOIN connectors_document d ON d.id = c.document_id WHERE d.external_id = 'fr.md'"
        )
        matches, vector = cursor.fetchone()
    # "installés" in the text and "installer" in a question both stem to "install" in French;
    # the English stemmer would have kept "installé", and French stop words would be lexemes.
    assert matches
    assert "'install'" in vector and "'paquet'" in vector
    assert "'les'" not in vector and "'des'" not in vector


def test_a_french_question_finds_the_french_document_by_an_inflected_form(manuals):
    # "installer" and "rafraîchir" appear in the document only as "installés" and "rafraîchie".
    assert found("Comment installer et rafraîchir ?")[0] == "fr.md"


def test_english_questions_still_find_english_documents(manuals):
    assert found("How do I refresh the list of installed packages?")[0] == "en.md"


def test_a_question_is_parsed_in_its_own_language_and_the_configured_ones(settings):
    settings.RAG_FULLTEXT_LANGUAGES = ["english"]
    assert question_configurations("Comment mettre à jour tous les paquets du serveur ?") == ["french", "english"]
    assert question_configurations("Wie aktualisiere ich alle Pakete auf dem Server?") == ["german", "english"]
    assert question_configurations("How do I upgrade every package on the server?") == ["english"]


def test_french_lexemes_come_from_the_french_stemmer(db):
    parsed, _ = bm25.parse_query("Comment installer les paquets pour le serveur ?")
    assert "install" in parsed.lexemes and "paquet" in parsed.lexemes  # French stems
    assert "instal" in parsed.lexemes  # and the configured English one, for English documents
    # French stop words are not handed to the English parser: "pour" would match every page
    # that mixes French into English text.
    assert "pour" not in parsed.lexemes


def test_a_text_that_cannot_be_placed_gets_the_first_configured_language(settings):
    settings.RAG_FULLTEXT_LANGUAGES = ["english"]
    assert document_configuration(title="", text="$ ls -l /etc/apt/ 42 7") == "english"
    settings.RAG_DETECT_LANGUAGES = []  # detection off
    assert document_configuration(title="", text=FRENCH) == "english"


def test_settings_name_known_languages_only():
    assert detect_languages_setting("French, english,french") == ["french", "english"]
    assert detect_languages_setting("none") == []
    with pytest.raises(ValueError, match="klingon"):
        detect_languages_setting("english,klingon")
    assert embedding_languages_setting("en, FR") == frozenset({"en", "fr"})
    with pytest.raises(ValueError):
        embedding_languages_setting("xx")


def test_the_dense_side_weighs_less_for_a_language_the_embedder_does_not_cover(settings):
    settings.EMBEDDING_LANGUAGES = frozenset({"en"})
    settings.RAG_DENSE_WEIGHT, settings.RAG_FULLTEXT_WEIGHT, settings.RAG_UNCOVERED_DENSE_WEIGHT = 0.6, 0.4, 0.2
    english, french = "How do I upgrade every package?", "Comment mettre à jour tous les paquets ?"
    assert side_weights(english) == (0.6, 0.4)
    assert not embedding_covers(french) and side_weights(french) == (0.2, 0.4)
    settings.EMBEDDING_LANGUAGES = frozenset({"*"})  # a multilingual model served over http
    assert side_weights(french) == (0.6, 0.4)


def test_fusion_follows_full_text_for_an_uncovered_language(manuals, settings):
    """Dense ranks the English page first, full text the French one: an English-only embedder's
    opinion wins for an English question and yields for a French one."""
    settings.RAG_FUSION, settings.RAG_FUSION_LEVEL, settings.RAG_FUSION_DOCUMENT_CHUNKS = "rrf", "chunk", 1
    settings.RAG_RRF_K, settings.RAG_DENSE_WEIGHT, settings.RAG_FULLTEXT_WEIGHT = 5, 0.6, 0.4
    settings.EMBEDDING_LANGUAGES = frozenset({"en"})
    english_page = Chunk.objects.get(document__external_id="en.md")
    question = "Comment installer et rafraîchir la liste des paquets ?"

    def first(uncovered_weight: float) -> str:
        settings.RAG_UNCOVERED_DENSE_WEIGHT = uncovered_weight
        hits = chunks_search(embedding=list(english_page.embedding), text=question, groups=[], k=3, mode="hybrid")
        return hits[0].chunk.document.external_id

    assert first(0.6) == "en.md"  # weighed like an English question: the vectors win
    assert first(0.2) == "fr.md"
    assert first(0.0) == "fr.md"  # dense side not searched at all


def test_index_languages_rewrites_vectors_of_documents_indexed_before_detection(manuals):
    Document.objects.update(language="english")
    for document in Document.objects.all():  # as indexed before detection existed
        chunks_search_vector_update(document=document)
    # The English stemmer keeps "installés" and "rafraîchie" apart from the question's words.
    assert found("Comment installer et rafraîchir ?")[:1] != ["fr.md"]
    embeddings = {i: list(e) for i, e in Chunk.objects.values_list("id", "embedding")}
    call_command("index_languages", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    assert language_of("fr.md") == "french" and language_of("de.md") == "german"
    assert found("Comment installer et rafraîchir ?")[0] == "fr.md"
    assert {i: list(e) for i, e in Chunk.objects.values_list("id", "embedding")} == embeddings  # not re-embedded
