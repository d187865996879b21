"""Detecting the language of documents indexed before detection existed (or after a change of
RAG_DETECT_LANGUAGES), and rewriting their chunks' full-text vectors in it: `manage.py
index_languages`. Only the full-text side changes: no chunk is re-embedded, searches go on.
"""

from __future__ import annotations

from collections import Counter

from django.db import transaction

from connectors.chunk_store import chunks_search_vector_update
from connectors.models import Document
from connectors.text_language import document_configuration

BATCH = 200


def documents_language_refresh(*, connector_id=None, everything: bool = False, log=None) -> dict:
    """Detect every document's language (or one connector's); where it changed, store it and
    rewrite its chunks' search vectors (with `everything`, every document's), one document per
    transaction. Returns the counts:
    documents seen and changed, chunks rewritten, and the documents per language."""
    documents = Document.objects.order_by("id")
    if connector_id is not None:
        documents = documents.filter(connector_id=connector_id)
    seen = changed = chunks = 0
    languages: Counter = Counter()
    ids = list(documents.values_list("id", flat=True))
    for start in range(0, len(ids), BATCH):
        for document in Document.objects.filter(id__in=ids[start : start + BATCH]).only(
            "id", "title", "text", "language", "content_hash"
        ):
            seen += 1
            language = document_configuration(title=document.title, text=document.text)
            languages[language] += 1
            if everything or language != document.language:
                rewritten = _store_language(document.id, document.content_hash, language)
                if rewritten is not None:
                    changed += language != document.language
                    chunks += rewritten
        if log:
            log(f"{seen}/{len(ids)} documents read, {changed} changed language, {chunks} chunks rewritten")
    return {"documents": seen, "changed": changed, "chunks_rewritten": chunks, "languages": dict(languages)}


@transaction.atomic
def _store_language(document_id, content_hash: str, language: str) -> int | None:
    # Locked, and only if its text is still the one read: a sync that stored a new text meanwhile
    # detected its language itself. None: the document changed or went away.
    document = (
        Document.objects.select_for_update()
        .filter(id=document_id, content_hash=content_hash)
        .only("id", "title", "language")
        .first()
    )
    if document is None:
        return None
    if document.language != language:
        document.language = language
        document.save(update_fields=["language"])
    return chunks_search_vector_update(document=document)
