"""A source's documents as the connectors pages preview them (Test connection, the dataset editor):
title, a readable start of the text, where it comes from and who will see it; secrets scrubbed."""

from __future__ import annotations

PREVIEW_CHARS = 600


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret (of 3 characters or more) replaced by dots."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "••••")
    return text


def preview_item(item) -> dict:
    text = item.text
    if text is None and item.content:
        from connectors.parsing import ParseError, parse_document

        try:
            text = parse_document(item.content, filename=item.external_id, media_type=item.media_type).text
        except ParseError as exc:
            text = f"(cannot be read: {exc})"
    text = (text or "").strip()
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rstrip() + "…"
    return {
        "title": item.title or item.external_id,
        "external_id": item.external_id,
        "text": text,
        "location": item.location or item.url or "",
        "acl": {
            "from_source": item.acl_groups is not None or item.acl_public is not None,
            "public": bool(item.acl_public),
            "groups": sorted(item.acl_groups or ()),
        },
    }
