"""Turning source items into index rows: parse, chunk, embed, store.

Pure steps are kept apart from the ORM writes so the sync engine can batch
embeddings across documents.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.conf import settings

from connectors.chunking import ChunkLimitExceeded, TextSpan, chunk_text
from connectors.parsing import ParseError, ParseLimits, parse_document
from connectors.sources.base import SourceDocument
from inference.embeddings import HttpEmbedder, LocalEmbedder
from inference.onnx_embedder import OnnxEmbedder


@lru_cache(maxsize=1)
def get_embedder():
    """The process-wide embedder chosen by EMBEDDING_BACKEND and EMBEDDING_DEVICE."""
    if settings.EMBEDDING_BACKEND == "http":
        return HttpEmbedder(
            base_url=settings.EMBEDDING_URL, model=settings.EMBEDDING_MODEL, batch_size=settings.EMBEDDING_BATCH_SIZE
        )

    def pytorch():
        return LocalEmbedder(batch_size=settings.EMBEDDING_FORWARD_BATCH_SIZE, device=settings.EMBEDDING_DEVICE,
                             threads=settings.EMBEDDING_THREADS)

    if settings.EMBEDDING_BACKEND == "onnx" and settings.EMBEDDING_DEVICE == "cpu":
        return OnnxEmbedder(
            cache_dir=settings.EMBEDDING_CACHE_DIR, precision=settings.EMBEDDING_ONNX_PRECISION,
            batch_size=settings.EMBEDDING_FORWARD_BATCH_SIZE, threads=settings.EMBEDDING_THREADS, fallback=pytorch,
        )
    return pytorch()


def content_hash(item: SourceDocument) -> str:
    digest = hashlib.sha256()
    digest.update(item.content if item.content else (item.text or "").encode("utf-8"))
    # The title is indexed with the text, so renaming an item re-indexes it. ACLs are not
    # hashed: an ACL change is applied in place, without re-embedding.
    digest.update(b"\0" + item.title.encode("utf-8"))
    return digest.hexdigest()


def parse_limits() -> ParseLimits:
    """The parsers' limits from the settings (connectors.parsing never reads Django's)."""
    return ParseLimits(
        timeout_seconds=settings.PARSE_TIMEOUT_SECONDS,
        max_memory_bytes=settings.PARSE_MAX_MEMORY_MB * 1024 * 1024,
        max_expanded_bytes=settings.PARSE_MAX_EXPANDED_MB * 1024 * 1024,
        max_chars=settings.PARSE_MAX_CHARS,
    )


def parse_item(item: SourceDocument, *, cancelled=None) -> tuple[str, str]:
    """The item's title and text; raises connectors.parsing.ParseError on unreadable content
    (and ParseCancelled when `cancelled()` turns true while a large file is being read)."""
    if item.text is not None:
        if len(item.text) > settings.PARSE_MAX_CHARS:
            raise ParseError(
                f"The item holds more than {settings.PARSE_MAX_CHARS:,} characters of text (PARSE_MAX_CHARS)."
            )
        return item.title or item.external_id, item.text
    parsed = parse_document(
        item.content, filename=item.external_id, media_type=item.media_type, limits=parse_limits(), cancelled=cancelled
    )
    return item.title or parsed.title or item.external_id, parsed.text


def chunk_document(text: str, *, max_chunks: int | None = None) -> list[TextSpan]:
    """The spans to embed; raises ChunkLimitExceeded past INDEX_MAX_CHUNKS (or `max_chunks`),
    counted while cutting, so an enormous text costs no more than the cap."""
    return chunk_text(
        text,
        max_tokens=settings.CHUNK_TOKENS,
        overlap_tokens=settings.CHUNK_OVERLAP_TOKENS,
        max_chunks=settings.INDEX_MAX_CHUNKS if max_chunks is None else max_chunks,
    )


def too_many_chunks_reason(exc: ChunkLimitExceeded) -> str:
    return (
        f"The document is too long to index: it needs more than {exc.max_chunks:,} chunks "
        f"of {settings.CHUNK_TOKENS} tokens (INDEX_MAX_CHUNKS); cutting stopped there. Split it into smaller files."
    )
