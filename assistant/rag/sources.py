"""The sources listed under an answer: every document it was given, best passage first.

(A stand-in with the contract's signature, for the agent path; hui's version of this file
replaces it at merge.)"""

from __future__ import annotations

PASSAGE_CHARS = 300


def sources_record(passages: list, citations: list[dict]) -> list[dict]:
    """One entry per document, cited ones first, then by first appearance: {"n", "title", "url",
    "connector", "document_id", "kind", "passage", "cited"}."""
    cited_numbers = {c.get("n") for c in citations or ()}
    by_document: dict[tuple, dict] = {}
    for p in passages:
        key = (p.kind, str(p.document_id))
        cited = p.n in cited_numbers
        entry = by_document.get(key)
        if entry is None or (cited and not entry["cited"]):
            text = " ".join(p.text.split())
            by_document[key] = {
                "n": p.n, "title": p.title, "url": p.document_url, "connector": p.connector,
                "document_id": str(p.document_id), "kind": p.kind,
                "passage": text if len(text) <= PASSAGE_CHARS else text[:PASSAGE_CHARS].rstrip() + "…",
                "cited": cited, "_order": entry["_order"] if entry else len(by_document),
            }
    entries = sorted(by_document.values(), key=lambda e: (not e["cited"], e["_order"]))
    return [{k: v for k, v in e.items() if k != "_order"} for e in entries]
