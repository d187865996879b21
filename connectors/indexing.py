"""Turning source items into index rows: parse, chunk, embed, store.

Pure steps are kept apart from the ORM writes so the sync engine can batch
embeddings across documents.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from django.conf import settings

from connectors.parsing import parse_document
from connectors.sources.base import SourceDocument
from inference.embeddings import HttpEmbedder, LocalEmbedder


@lru_cache(maxsize=1)
def get_embedder():
    """The process-wide embedder chosen by EMBEDDING_BACKEND."""
    if settings.EMBEDDING_BACKEND == "http":
        return HttpEmbedder(
            base_url=settings.EMBEDDING_URL, model=settings.EMBEDDING_MODEL, batch_size=settings.EMBEDDING_BATCH_SIZE
        )
    return LocalEmbedder(batch_size=settings.EMBEDDING_FORWARD_BATCH_SIZE)


def content_hash(item: SourceDocument) -> str:
    digest = hashlib.sha256()
    digest.update(item.content if item.content else (item.text or "").encode("utf-8"))
    # The title is indexed with the text, so renaming an item re-indexes it. ACLs are not
    # hashed: an ACL change is applied in place, without re-embedding.
    digest.update(b"\0" + item.title.encode("utf-8"))
    return digest.hexdigest()


def parse_item(item: SourceDocument) -> tuple[str, str]:
    """The item's title and text; raises connectors.parsing.ParseError on unreadable content."""
    if item.text is not None:
        return item.title or item.external_id, item.text
    parsed = parse_document(item.content, filename=item.external_id, media_type=item.media_type)
    return item.title or parsed.title or item.external_id, parsed.text
