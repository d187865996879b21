"""Writing a document's chunks into one or more index versions (the sync engine and the rebuild)."""

from __future__ import annotations

from connectors.models import Chunk, Document
from connectors.search.bm25 import chunk_search_vector


def chunks_replace(*, document: Document, spans, vectors, versions: list[int]) -> int:
    """Replace the document's chunks in `versions` with these spans and vectors.

    Call inside a transaction that holds the document's row (select_for_update), read after the
    lock: its ACL, title and language are copied onto the chunks. Chunks of other versions are
    left alone. Returns how many chunks of those versions were there before (0: new there).
    """
    deleted, _ = Chunk.objects.filter(document_id=document.id, index_version__in=versions).delete()
    Chunk.objects.bulk_create(
        Chunk(
            document_id=document.id,
            connector_id=document.connector_id,
            index_version=version,
            ordinal=ordinal,
            text=span.text,
            start_char=span.start,
            end_char=span.end,
            token_count=span.token_count,
            embedding=vector,
            acl_public=document.acl_public,
            acl_groups=document.acl_groups,
        )
        for version in versions
        for ordinal, (span, vector) in enumerate(zip(spans, vectors, strict=True))
    )
    Chunk.objects.filter(document_id=document.id, index_version__in=versions).update(
        search_vector=chunk_search_vector(title=document.title, language=document.language)
    )
    return deleted
