"""Retrieval: the passages a reader may see that best match a question."""

from __future__ import annotations

from dataclasses import dataclass, field

import logging
from functools import lru_cache

from django.conf import settings
from django.urls import reverse

from assistant.rag.context import expand_hits, material_cap
from connectors.indexing import embed_questions, get_embedder
from connectors.search import NO_FILTERS, SearchFilters, chunks_search
from inference.rerank import HttpReranker, RerankError

logger = logging.getLogger(__name__)


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
    #: The chunks the block is made of (a whole document or neighbouring chunks around a hit).
    segments: tuple = field(default=(), compare=False)
    #: "document" (the shared index) or "attachment" (a file attached to the conversation).
    kind: str = "document"

    @property
    def document_url(self) -> str:
        return chunk_url(self.document_id, self.chunk_id, kind=self.kind)


def chunk_url(document_id, chunk_id, kind: str = "document") -> str:
    view = "chat:attachment" if kind == "attachment" else "chat:document"
    return f"{reverse(view, args=[document_id])}?chunk={chunk_id}"


@lru_cache(maxsize=1)
def get_reranker() -> HttpReranker | None:
    """The optional cross-encoder stage (RAG_RERANK_URL); off by default."""
    if not settings.RAG_RERANK_URL:
        return None
    return HttpReranker(base_url=settings.RAG_RERANK_URL, model=settings.RAG_RERANK_MODEL)


def rerank(reranker: HttpReranker, query: str, hits: list) -> list:
    """Hits reordered by the cross-encoder; on failure the fused order stands (and is logged)."""
    try:
        scores = reranker.scores(query, [hit.chunk.text for hit in hits])
    except RerankError as exc:
        logger.warning("reranking skipped: %s", exc)
        return hits
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [hits[i] for i in order]


def embed_query(question: str) -> list[float]:
    return embed_questions([question], get_embedder())[0]


def retrieve(
    *,
    embedding: list[float] | None,
    groups: list[str],
    query: str = "",
    k: int | None = None,
    mode: str | None = None,
    filters: SearchFilters = NO_FILTERS,
    material_tokens: int | None = None,
) -> list[Passage]:
    """Numbered source blocks for the question, filtered by the reader's groups in the query itself.

    Hybrid search finds the top-k chunks; the context planner widens them into whole
    documents or neighbouring chunks within `material_tokens` (default: see context.material_cap).
    """
    hits = search_hits(embedding=embedding, groups=groups, query=query, k=k, mode=mode, filters=filters)
    return passages_from_hits(hits, material_tokens)


def search_hits(
    *,
    embedding: list[float] | None,
    groups: list[str],
    query: str = "",
    k: int | None = None,
    mode: str | None = None,
    filters: SearchFilters = NO_FILTERS,
) -> list:
    """The top-k chunks for the question (reranked when a reranker is set), inside the reader's ACL."""
    k = k or settings.RAG_TOP_K
    reranker = get_reranker() if query else None
    hits = chunks_search(
        embedding=embedding,
        text=query,
        groups=groups,
        k=max(k, settings.RAG_RERANK_CANDIDATES) if reranker else k,
        mode=mode or (settings.RAG_SEARCH_MODE if query else "dense"),
        filters=filters,
    )
    if reranker:
        hits = rerank(reranker, query, hits)[:k]
    return hits


def passages_from_hits(hits: list, material_tokens: int | None = None) -> list[Passage]:
    """The hits widened into numbered blocks within `material_tokens`; hits that do not fit are left out."""
    budget = material_cap(settings.LLM_CONTEXT_LENGTH) if material_tokens is None else material_tokens
    documents = {hit.chunk.document_id: hit.chunk.document for hit in hits}
    return [
        Passage(
            n=index,
            chunk_id=block["hit_chunk_id"],
            document_id=str(block["document_id"]),
            title=documents[block["document_id"]].title,
            location=documents[block["document_id"]].location,
            url=documents[block["document_id"]].url,
            connector=documents[block["document_id"]].connector.name,
            text=block["text"],
            start_char=block["start"],
            end_char=block["end"],
            segments=block["segments"],
        )
        for index, block in enumerate(expand_hits(hits, budget), start=1)
    ]
