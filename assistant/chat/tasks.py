"""Chat housekeeping run by beat."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from celery import shared_task

from assistant.chat.services import answers_sweep_stale, conversations_purge_deleted


@shared_task(acks_late=True)
def purge_deleted_conversations() -> int:
    """Really delete conversations whose "Undo" window has passed (idempotent)."""
    return conversations_purge_deleted()


@shared_task(acks_late=True)
def sweep_stale_answers() -> int:
    """Answers left "in progress" by a dead answers worker become failed ones with Retry."""
    from django.conf import settings

    if settings.ANSWER_RUNNER != "worker":  # a request writing an answer has no heartbeat to look at
        return 0
    return answers_sweep_stale()


_thread = threading.local()


def _event_loop_runner() -> asyncio.Runner:
    """This worker thread's event loop, kept from one answer to the next: what is bound to a loop
    (the Redis connections of answer_relay) is then opened once, not for every answer."""
    runner = getattr(_thread, "runner", None)
    if runner is None:
        runner = _thread.runner = asyncio.Runner()
    return runner


# Acknowledged when taken (not acks_late): an answer cut short by a dead worker is marked failed
# with Retry by whoever follows it (answer_worker.answer_follow), never written a second time.
@shared_task(acks_late=False, ignore_result=True)
def generate_answer(message_id: str, user_id: int, language: str) -> None:
    """Write one answer into its event stream (assistant/chat/answer_relay.py)."""
    from assistant.chat.answer_worker import answer_write

    _event_loop_runner().run(answer_write(message_id, user_id, language=language), context=contextvars.copy_context())
