"""Where each chunk lies in its document: what context assembly widens hits with."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.index_version import live_index
from connectors.models import Chunk, Document


@dataclass(frozen=True)
class ChunkSpan:
    id: int
    ordinal: int
    start: int
    end: int
    tokens: int


def documents_layout(document_ids, version: int | None = None) -> dict:
    """For each document: its text and its chunks' positions in one index version (the live one
    unless given), in order (no vectors loaded)."""
    if version is None:
        version = live_index().number
    layout: dict = {
        doc_id: {"text": text, "chunks": []}
        for doc_id, text in Document.objects.filter(id__in=document_ids).values_list("id", "text")
    }
    rows = (
        Chunk.objects.filter(document_id__in=document_ids, index_version=version)
        .order_by("document_id", "ordinal")
        .values_list("document_id", "id", "ordinal", "start_char", "end_char", "token_count")
    )
    for doc_id, chunk_id, ordinal, start, end, tokens in rows:
        layout[doc_id]["chunks"].append(ChunkSpan(chunk_id, ordinal, start, end, tokens))
    return layout
