"""The answer worker's side of the relay (assistant/chat/answer_relay.py) and the web side that
follows it: `answer_write` runs in a Celery worker (queue "answer") and writes the answer's events
into its stream; `answer_follow` hands a new answer to a worker and reads the stream for one client,
noticing a worker that died mid-answer (the answer is then marked failed with Retry, never left
"in progress")."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import translation
from django.utils.translation import gettext as _

from assistant.chat import answer_relay as relay
from assistant.chat.answering import answer_events, message_payload
from assistant.chat.models import Message
from assistant.chat.services import answer_fail_retryable
from connectors.stage_timing import lap, trace_log, trace_open

logger = logging.getLogger(__name__)
TERMINAL = {"done", "error"}


async def answer_write(message_id, user_id: int, *, language: str, suggest_title: bool = True) -> None:
    """Generate the answer (the same code as a request would run) into its event stream."""
    trace_open()
    message = await Message.objects.select_related("conversation__user").filter(id=message_id).afirst()
    if message is not None and message.conversation.user_id == user_id:
        user = message.conversation.user  # the asker owns the conversation: no second query
    else:
        user = await get_user_model().objects.filter(id=user_id).afirst()
    if message is None or user is None or message.status != Message.Status.PENDING:
        return  # gone, or already answered / stopped / given up on while it waited in the queue
    lap("worker_load")  # the message and the user
    async with relay.redis_connection() as client:
        beat = asyncio.create_task(relay.heartbeat(client, message_id))
        try:
            with translation.override(language):
                async for name, data in answer_events(
                    message, user, suggest_title=suggest_title, notices=True, language=language
                ):
                    await relay.publish(client, message_id, name, data)
        except Exception:  # a bug must not leave the answer "in progress": say so, offer Retry
            logger.exception("answer %s failed in the worker", message_id)
            await _mark_failed(message_id, _("The answer failed. Press Retry."))
        finally:
            await relay.publish(client, message_id, relay.END)
            beat.cancel()
            await client.delete(relay.alive_key(message_id))


async def _mark_failed(message_id, text: str) -> bool:
    return await sync_to_async(answer_fail_retryable)(message_id=message_id, text=text)


def _enqueue(message_id, user_id: int, language: str) -> None:
    # By name (routed to queue "answer" by CELERY_TASK_ROUTES): tasks.py imports this module.
    current_app.send_task("assistant.chat.tasks.generate_answer", args=(str(message_id), user_id, language))


async def _status(message_id) -> str | None:
    return await Message.objects.filter(id=message_id).values_list("status", flat=True).afirst()


async def answer_follow(message: Message, user, *, last_id: str, language: str) -> AsyncIterator[tuple[str | None, str, dict]]:
    """(event id, event, data) for one client, from after `last_id` to the answer's end."""
    async with relay.redis_connection() as client:
        if message.status == Message.Status.PENDING and await relay.claim_queue(client, message.id):
            try:
                await sync_to_async(_enqueue)(message.id, user.id, language)
            except Exception:  # the broker is unreachable: let a later try queue it again
                await client.delete(relay.queued_key(message.id))
                raise
            lap("enqueue")

        waiting_since = time.monotonic()

        async def idle() -> bool:
            """Nothing new for a while: go on unless the writer is gone."""
            status = await _status(message.id)
            if await relay.writer_alive(client, message.id):
                return True
            if status == Message.Status.STREAMING:  # claimed by a worker that stopped heart-beating
                await _mark_failed(message.id, _("The answer was interrupted (its worker stopped). Press Retry."))
                return True  # the error and the end are in the stream now
            if status == Message.Status.PENDING and time.monotonic() - waiting_since > settings.ANSWER_QUEUE_TIMEOUT:
                await _mark_failed(message.id, _("No answer worker took the question in time. Press Retry."))
                return True
            return status == Message.Status.PENDING  # still queued: wait; finished: stop reading

        ended, token_seen = False, False
        async for entry_id, event, data in relay.tail(client, message.id, last_id, idle):
            ended = ended or event in TERMINAL
            first_token = event == "token" and not token_seen
            if first_token:
                lap("relay_first_token")  # from the queue to the worker's first token, read here
            yield entry_id, event, data
            if first_token:
                token_seen = True
                lap("first_token_write")
                trace_log("answer-follow", answer=str(message.id))
        if not ended:  # the stream expired or its writer died after saving: the stored answer
            stored = await Message.objects.select_related("conversation").aget(id=message.id)
            yield None, "done", await sync_to_async(message_payload)(stored, user)
