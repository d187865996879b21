"""With EMBEDDING_MODEL=multilingual-e5-small, a question in French finds the French page, and a
question in German finds the page that answers it in English, through the product's own search
(the question embedded as the chat embeds it, chunks indexed by a real sync)."""

from __future__ import annotations

import pytest

from assistant.rag.retrieval import embed_query
from connectors.indexing import get_embedder
from connectors.models import IndexVersion
from connectors.search import bm25, chunks_search
from tests.folders import folder_synced

PAGES = {
    "reseau.md": "# Configuration du réseau\n\nPour donner une adresse IP statique à la machine, éditez le fichier "
                 "/etc/network/interfaces : indiquez l'adresse, le masque et la passerelle, puis relancez le réseau.\n",
    "mail.md": "# Mail server\n\nPostfix delivers the mail. Its main configuration file is /etc/postfix/main.cf, "
               "where the domains it accepts mail for are listed; reload Postfix after each change.\n",
    "pakete.md": "# Paketverwaltung\n\nDebian-Pakete werden mit APT installiert und aktualisiert. Vor jeder "
                 "Installation wird die Liste der verfügbaren Pakete aus den eingetragenen Quellen aktualisiert.\n",
}


@pytest.fixture
def e5_index(db, tmp_path, settings):
    settings.EMBEDDING_MODEL = "multilingual-e5-small"
    settings.EMBEDDING_BACKEND = "onnx"
    settings.EMBEDDING_LANGUAGES = frozenset({"*"})
    get_embedder.cache_clear()
    bm25.statistics_clear()
    IndexVersion.objects.all().delete()  # a fresh index: its first version is built with this model
    yield folder_synced(tmp_path / "docs", PAGES)
    get_embedder.cache_clear()
    bm25.statistics_clear()


def first(question: str, mode: str) -> str:
    hits = chunks_search(embedding=embed_query(question), text=question, groups=[], k=3, mode=mode)
    return hits[0].chunk.document.external_id


def test_the_index_holds_multilingual_e5_vectors(e5_index):
    assert get_embedder().model == "multilingual-e5-small"


def test_a_french_question_finds_the_french_page(e5_index):
    question = "Comment configurer une adresse IP fixe sur le serveur ?"
    assert first(question, "hybrid") == "reseau.md"
    assert first(question, "dense") == "reseau.md"


def test_a_german_question_finds_the_english_page_that_answers_it(e5_index):
    # No word of the question is in the English page: only the vectors can tell.
    assert first("Wo stelle ich ein, für welche Domänen der Mailserver Post annimmt?", "dense") == "mail.md"
