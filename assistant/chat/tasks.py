"""Chat housekeeping run by beat."""

from __future__ import annotations

from celery import shared_task

from assistant.chat.services import conversations_purge_deleted


@shared_task(acks_late=True)
def purge_deleted_conversations() -> int:
    """Really delete conversations whose "Undo" window has passed (idempotent)."""
    return conversations_purge_deleted()
