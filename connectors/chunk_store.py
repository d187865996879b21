"""Writing documents' chunks into one or more index versions (the sync engine and the rebuild)."""

from __future__ import annotations

from connectors.indexing import chunk_context_parts
from connectors.models import Chunk, Document
from connectors.search.bm25 import chunk_search_vector


def chunks_replace(*, document: Document, chunks, vectors, versions: list[int]) -> int:
    """Replace the document's chunks in `versions` with these (indexing.PreparedChunk: the exact
    slice and its heading chain) and their vectors.

    Call inside a transaction that holds the document's row (select_for_update), read after the
    lock: its ACL, title and language are copied onto the chunks. Chunks of other versions are
    left alone. Returns how many chunks of those versions were there before (0: new there).
    """
    return chunks_replace_many([(document, chunks, vectors)], versions=versions)


def chunks_replace_many(entries, *, versions: list[int]) -> int:
    """`chunks_replace` for several (document, chunks, vectors) at once: one DELETE and one
    INSERT for all of them, the full-text vector computed in the INSERT (an index task stores
    its whole batch in a few statements instead of five per document)."""
    if not entries:
        return 0
    deleted, _ = Chunk.objects.filter(
        document_id__in=[document.id for document, _, _ in entries], index_version__in=versions
    ).delete()
    parts = chunk_context_parts()  # the full-text vector holds what the embedded header holds
    Chunk.objects.bulk_create(
        Chunk(
            document_id=document.id,
            connector_id=document.connector_id,
            index_version=version,
            ordinal=ordinal,
            text=chunk.span.text,
            start_char=chunk.span.start,
            end_char=chunk.span.end,
            token_count=chunk.span.token_count,
            section=chunk.section,
            embedding=vector,
            acl_public=document.acl_public,
            acl_groups=document.acl_groups,
            search_vector=chunk_search_vector(
                title=document.title if "title" in parts else "", language=document.language,
                headings="headings" in parts, section=chunk.section, text=chunk.span.text,
            ),
        )
        for document, chunks, vectors in entries
        for version in versions
        for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
    )
    return deleted


def chunks_search_vector_update(*, document: Document, versions: list[int] | None = None) -> int:
    """(Re)compute the full-text vectors of the document's chunks (in `versions`, default all)
    from its title and language; returns how many chunks were written. The embeddings are left alone."""
    parts = chunk_context_parts()  # the full-text vector holds what the embedded header holds
    chunks = Chunk.objects.filter(document_id=document.id)
    if versions is not None:
        chunks = chunks.filter(index_version__in=versions)
    return chunks.update(
        search_vector=chunk_search_vector(
            title=document.title if "title" in parts else "", language=document.language, headings="headings" in parts
        )
    )
