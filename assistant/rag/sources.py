"""The sources listed under an answer: every document the answer was given (retrieved up front or
read by a tool), one entry per document, cited ones first.

With a weak model that cites nothing, or cites the wrong block, the reader can still find the
right document in this list. It is stored with the message (Message.sources) and re-checked
against the reader's access whenever it is shown (assistant.chat.selectors).
"""

from __future__ import annotations

import re

from assistant.rag.query_sources import QueryPassage, query_entry
from assistant.rag.retrieval import Passage

#: The passage shown under a source's title: enough to recognise it, short enough for a list.
PASSAGE_CHARS = 300


#: Markdown's marks (headings, emphasis, code) that read as noise in a one-paragraph excerpt.
_MARKS = re.compile(r"(?m)^\s{0,3}#{1,6}\s+|\*\*|__|`+")


def _clip(text: str, limit: int = PASSAGE_CHARS) -> str:
    flat = " ".join(_MARKS.sub(" ", str(text or "")).split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip(" ,;:.") + "…"


def _best_text(p: Passage) -> str:
    """The passage's hit: a block can be a whole document, and its retrieval hit is the chunk
    that matched the question best."""
    for segment in p.segments:
        if segment.chunk_id == p.chunk_id:
            return p.text[segment.start - p.start_char : segment.end - p.start_char]
    return p.text


def _entry(p: Passage, citation: dict | None) -> dict:
    """One document: where it is cited, the cited passage (what its [n] chip opens); otherwise
    its best-ranked passage."""
    return {
        "n": citation.get("n") if citation else p.n,
        "title": p.title,
        "url": (citation.get("document_url") if citation else "") or p.document_url,
        "connector": p.connector,
        "document_id": str(p.document_id),
        "kind": p.kind,
        "passage": _clip(citation.get("quote") if citation and citation.get("quote") else _best_text(p)),
        "cited": citation is not None,
    }


def sources_record(passages: list[Passage], citations: list[dict]) -> list[dict]:
    """The answer's sources as stored in Message.sources: one entry per document among
    `passages` (best passage first: the passages' order is their rank), those cited in
    `citations` first, in the order the answer cites them, then the others in rank order.

    Each entry: {"n", "title", "url" (the document viewer, at the passage), "connector",
    "document_id", "kind" ("document" or "attachment"), "passage" (at most PASSAGE_CHARS
    characters), "cited"}; a query result is one entry of its own (assistant.rag.query_sources)."""
    by_n = {p.n: p for p in passages}
    first_citation: dict[tuple, dict] = {}
    for citation in citations:
        p = by_n.get(citation.get("n"))
        if p is not None:
            first_citation.setdefault((p.kind, str(p.document_id)), citation)
    entries: dict[tuple, dict] = {}
    for p in passages:
        key = (p.kind, str(p.document_id))
        if key not in entries:
            cited = first_citation.get(key)
            entries[key] = query_entry(p, cited is not None) if isinstance(p, QueryPassage) else _entry(p, cited)
    cited = [entries[key] for key in first_citation]
    return cited + [e for e in entries.values() if not e["cited"]]
