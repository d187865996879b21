"""Long context: spend the model's window on the material that answers the question.

The window is split into: system prompt, conversation history (oldest turns dropped
first when long), the question, room for the answer, and the material budget. The
material budget is filled by expanding retrieval hits in rank order: a whole document
when it fits, else a window of neighbouring chunks around each hit; windows of one
document that touch are merged, and blocks are ordered by document and position.

Tokens are counted with the stated approximation of inference.tokens (it over-counts
slightly against the BPE tokenizers of Llama/Mistral/SmolLM2, the safe side).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from connectors.search import ScoredChunk, documents_layout
from inference.chat_client import ModelServerError
from inference.tokens import approx_token_count

logger = logging.getLogger(__name__)

_WINDOW_CACHE: dict[str, tuple[float, int]] = {}
_WINDOW_TTL = 300.0
BLOCK_OVERHEAD_TOKENS = 24  # the <source ...> header and footer of each block


@dataclass(frozen=True)
class Segment:
    """One chunk inside a source block: what a citation can point to precisely."""

    chunk_id: int
    start: int
    end: int


def context_window_cached() -> int | None:
    """The context length read from the model server less than a few minutes ago, else None
    (no request: fit for an event loop)."""
    cached = _WINDOW_CACHE.get(settings.LLM_BASE_URL)
    if cached and time.monotonic() - cached[0] < _WINDOW_TTL:
        return cached[1]
    return None


def context_window(client=None) -> int:
    """The model's context length: the server's `max_model_len` (vLLM) if it reports one,
    else LLM_CONTEXT_LENGTH. Cached for a few minutes per model server."""
    key = settings.LLM_BASE_URL
    cached = context_window_cached()
    if cached is not None:
        return cached
    window = settings.LLM_CONTEXT_LENGTH
    if client is not None:
        try:
            for model in client.list_models():
                if model.get("id") == settings.LLM_MODEL and model.get("max_model_len"):
                    window = int(model["max_model_len"])
        except ModelServerError as exc:  # the answer itself will report the outage
            logger.info("could not read the context window from the model server: %s", exc)
    _WINDOW_CACHE[key] = (time.monotonic(), window)
    return window


@dataclass(frozen=True)
class Budget:
    window: int
    answer: int
    fixed: int  # system prompt + question + prompt scaffolding
    history: int
    material: int


def plan_budget(
    *, window: int, system_prompt: str, question: str, history: list[dict], answer_tokens: int | None = None
) -> tuple[Budget, list[dict]]:
    """Split the window; returns the budget and the history trimmed to its share.

    `answer_tokens`: the longest answer wanted (an assistant's max tokens), else LLM_MAX_TOKENS.
    """
    answer = min(answer_tokens or settings.LLM_MAX_TOKENS, window // 4)
    fixed = approx_token_count(system_prompt) + approx_token_count(question) + 64
    history_share = int((window - answer - fixed) * settings.RAG_HISTORY_SHARE)
    kept: list[dict] = []
    used = 0
    for turn in reversed(history):  # newest first: old turns go when the conversation is long
        cost = approx_token_count(turn["content"]) + 4
        if used + cost > history_share:
            break
        kept.insert(0, turn)
        used += cost
    material = max(0, min(window - answer - fixed - used, material_cap(window)))
    return Budget(window, answer, fixed, used, material), kept


def material_cap(window: int) -> int:
    """Most tokens of retrieved material: RAG_CONTEXT_TOKENS, else a share of the window."""
    return settings.RAG_CONTEXT_TOKENS or int(window * settings.RAG_CONTEXT_SHARE)


def whole_document_cap(material_tokens: int) -> int:
    """Largest document given whole: RAG_WHOLE_DOCUMENT_TOKENS, else 80% of the material budget."""
    if settings.RAG_WHOLE_DOCUMENT_TOKENS is not None:
        return settings.RAG_WHOLE_DOCUMENT_TOKENS
    return int(material_tokens * 0.8)


def expand_hits(hits: list[ScoredChunk], material_tokens: int) -> list[dict]:
    """Blocks of text to give the model, as dicts: document, start, end, segments, hit chunk.

    Hits are taken in rank order; each brings its whole document if that fits, else its
    neighbours (RAG_NEIGHBOUR_CHUNKS on each side, nearest first) while budget remains.
    """
    if not hits:
        return []
    order: list = []
    hit_chunks: dict = {}
    for hit in hits:
        doc_id = hit.chunk.document_id
        if doc_id not in hit_chunks:
            order.append(doc_id)
            hit_chunks[doc_id] = []
        hit_chunks[doc_id].append(hit.chunk)
    layout = documents_layout(order, version=hits[0].chunk.index_version)  # the version searched
    selected: dict = {doc_id: set() for doc_id in order}
    used = 0
    whole_limit = whole_document_cap(material_tokens)

    def cost(span) -> int:
        return span.tokens

    def take(doc_id, span) -> None:
        nonlocal used
        extra = cost(span) + (BLOCK_OVERHEAD_TOKENS if not selected[doc_id] else 0)
        if span.ordinal not in selected[doc_id] and used + extra <= material_tokens:
            selected[doc_id].add(span.ordinal)
            used += extra

    by_ordinal = {doc_id: {c.ordinal: c for c in layout[doc_id]["chunks"]} for doc_id in order}
    for hit in hits:  # every hit itself, in rank order
        span = by_ordinal[hit.chunk.document_id].get(hit.chunk.ordinal)
        if span is not None:
            take(hit.chunk.document_id, span)
    for doc_id in order:  # then whole documents, in rank order, when they fit
        chunks = layout[doc_id]["chunks"]
        rest = [c for c in chunks if c.ordinal not in selected[doc_id]]
        total = sum(cost(c) for c in chunks) + BLOCK_OVERHEAD_TOKENS
        missing = sum(cost(c) for c in rest)
        if rest and total <= whole_limit and used + missing <= material_tokens:
            for span in rest:
                take(doc_id, span)
    for radius in range(1, settings.RAG_NEIGHBOUR_CHUNKS + 1):  # then neighbours, nearest first
        for hit in hits:
            doc_id = hit.chunk.document_id
            for ordinal in (hit.chunk.ordinal - radius, hit.chunk.ordinal + radius):
                span = by_ordinal[doc_id].get(ordinal)
                if span is not None:
                    take(doc_id, span)
    blocks = []
    for doc_id in order:
        chunks = [c for c in layout[doc_id]["chunks"] if c.ordinal in selected[doc_id]]
        run: list = []
        for span in chunks + [None]:
            if span is not None and (not run or span.ordinal == run[-1].ordinal + 1):
                run.append(span)
                continue
            if run:
                hits_in_run = [c.id for c in hit_chunks[doc_id] if any(s.id == c.id for s in run)]
                blocks.append({
                    "document_id": doc_id,
                    "text": layout[doc_id]["text"][run[0].start : run[-1].end],
                    "start": run[0].start,
                    "end": run[-1].end,
                    "segments": tuple(Segment(s.id, s.start, s.end) for s in run),
                    "hit_chunk_id": hits_in_run[0] if hits_in_run else run[0].id,
                })
            run = [span] if span is not None else []
    return blocks
