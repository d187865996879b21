"""Retrieval: the passages a reader may see that best match a question."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from connectors.indexing import get_embedder
from connectors.selectors import NO_FILTERS, SearchFilters, chunks_search


@dataclass(frozen=True)
class Passage:
    """One numbered source block given to the model."""

    n: int
    chunk_id: int
    document_id: str
    title: str
    location: str
    url: str
    connector: str
    text: str
    start_char: int
    end_char: int

    @property
    def document_url(self) -> str:
        return f"{reverse('chat:document', args=[self.document_id])}?chunk={self.chunk_id}"


def embed_query(question: str) -> list[float]:
    return get_embedder().embed([question])[0]


def retrieve(
    *,
    embedding: list[float] | None,
    groups: list[str],
    query: str = "",
    k: int | None = None,
    mode: str | None = None,
    filters: SearchFilters = NO_FILTERS,
) -> list[Passage]:
    """Top-k passages for the query (hybrid by default), filtered by the reader's groups in the query itself."""
    hits = chunks_search(
        embedding=embedding,
        text=query,
        groups=groups,
        k=k or settings.RAG_TOP_K,
        mode=mode or (settings.RAG_SEARCH_MODE if query else "dense"),
        filters=filters,
    )
    chunks = [hit.chunk for hit in hits]
    return [
        Passage(
            n=index,
            chunk_id=chunk.id,
            document_id=str(chunk.document_id),
            title=chunk.document.title,
            location=chunk.document.location,
            url=chunk.document.url,
            connector=chunk.document.connector.name,
            text=chunk.text,
            start_char=chunk.start_char,
            end_char=chunk.end_char,
        )
        for index, chunk in enumerate(chunks, start=1)
    ]
