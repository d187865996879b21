"""Search over the index, always inside the reader's ACL: dense (vectors), full text (BM25) and
hybrid (both, fused by RRF). The RAG_* search settings are read here and in assistant/rag only."""

from connectors.search.filters import NO_FILTERS, SearchFilters
from connectors.search.hybrid import ScoredChunk, chunks_search
from connectors.search.layout import ChunkSpan, documents_layout

__all__ = ["NO_FILTERS", "ChunkSpan", "ScoredChunk", "SearchFilters", "chunks_search", "documents_layout"]
