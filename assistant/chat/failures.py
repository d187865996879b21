"""Errors a user understands, and retrying an answer that failed.

The model server's failures (inference.chat_client.ModelServerError) carry a `kind`; each
kind gets a message that says what happened and what to do, and whether Retry makes sense.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from assistant.chat.models import Message
from assistant.chat.services import InvalidInput
from inference.chat_client import ModelServerError


def error_message(exc: ModelServerError) -> str:
    kind = getattr(exc, "kind", "failed")
    if kind == "unreachable":
        return _("The model server is not reachable right now. Your question is kept: press Retry in a moment.")
    if kind == "busy":
        return _("The model server is busy with other requests. Your question is kept: press Retry in a moment.")
    if kind == "context_too_long":
        return _(
            "The question, its files and the conversation are too long for the model. "
            "Shorten the question, remove an attached file, or start a new conversation."
        )
    if kind == "broken":
        return _("The connection to the model server broke off mid-answer. Press Retry to ask again.")
    if kind == "refused":
        return _("The model server refused this request: %(detail)s") % {"detail": str(exc)}
    return _("The model server failed to answer. Press Retry to ask again.")


def error_event(exc: ModelServerError, *, partial: bool) -> dict:
    """The `error` event's data: the message, its kind and whether Retry is offered."""
    message = error_message(exc)
    if partial:
        message = _("The answer was cut off. %(reason)s") % {"reason": message}
    return {
        "message": message,
        "kind": getattr(exc, "kind", "failed"),
        "retryable": exc.retryable,
        "partial": partial,
    }


@transaction.atomic
def answer_retry(*, message: Message) -> Message:
    """Answer the same question again in place of an answer that failed."""
    if message.role != Message.Role.ASSISTANT:
        raise InvalidInput("Only an answer can be retried.")
    if message.status != Message.Status.ERROR:
        raise InvalidInput("Only an answer that failed can be retried.")
    busy = Message.objects.filter(
        conversation_id=message.conversation_id, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
    ).exclude(id=message.id)
    if busy.exists():
        raise InvalidInput("Wait for the current answer to finish, or stop it, before retrying.")
    updated = Message.objects.filter(id=message.id, status=Message.Status.ERROR).update(
        status=Message.Status.PENDING, content="", rendered_html="", citations=[], error="", error_retryable=True,
        first_token_ms=None,
    )
    if not updated:
        raise InvalidInput("This answer is already being retried.")
    message.refresh_from_db()
    return message
