"""Writes on conversations and messages."""

from __future__ import annotations

import uuid

from django.db import transaction

from assistant.chat.models import Attachment, Conversation, Message

MAX_QUESTION_CHARS = 8000
TITLE_CHARS = 60


class InvalidInput(ValueError):
    """Input a user must fix; the message says how."""


def conversation_create(*, user) -> Conversation:
    return Conversation.objects.create(user=user)


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    title = " ".join(title.split())
    if not title:
        raise InvalidInput("A conversation title cannot be empty.")
    conversation.title = title[:200]
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def _attachment_ids(conversation: Conversation, attachment_ids) -> list[uuid.UUID]:
    """The ids, checked: each must be a file attached to this conversation (any other is refused)."""
    if not attachment_ids:
        return []
    if not isinstance(attachment_ids, list | tuple):
        raise InvalidInput("The attached files must be given as a list of ids.")
    try:
        ids = {uuid.UUID(str(value)) for value in attachment_ids}
    except ValueError:
        raise InvalidInput("One of the attached files is not known; remove it and attach it again.") from None
    if Attachment.objects.filter(conversation=conversation, id__in=ids).count() != len(ids):
        raise InvalidInput("One of the attached files is not known; remove it and attach it again.")
    return list(ids)


@transaction.atomic
def question_submit(
    *, conversation: Conversation, content: str, attachment_ids: list | None = None
) -> tuple[Message, Message]:
    """Store the user's question and an empty answer that the stream view fills.

    Files attached in the composer (`attachment_ids`, not yet sent with a question) are
    linked to the question.
    """
    content = content.strip()
    if not content:
        raise InvalidInput("Type a question first.")
    if len(content) > MAX_QUESTION_CHARS:
        raise InvalidInput(f"The question is too long ({len(content)} characters); the limit is {MAX_QUESTION_CHARS}.")
    if Message.objects.filter(
        conversation=conversation, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
    ).exists():
        raise InvalidInput("Wait for the current answer to finish, or stop it, before asking again.")
    ids = _attachment_ids(conversation, attachment_ids)
    question = Message.objects.create(conversation=conversation, role=Message.Role.USER, content=content)
    Attachment.objects.filter(conversation=conversation, id__in=ids, message__isnull=True).update(message=question)
    answer = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
    )
    if conversation.title == Conversation.DEFAULT_TITLE:
        first_line = " ".join(content.split())
        conversation.title = first_line if len(first_line) <= TITLE_CHARS else first_line[: TITLE_CHARS - 1] + "…"
    conversation.save(update_fields=["title", "updated_at"])
    return question, answer


def answer_stop(*, message: Message) -> bool:
    """Ask a streaming answer to stop; the stream notices and keeps the partial text."""
    return bool(
        Message.objects.filter(
            id=message.id, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
        ).update(status=Message.Status.STOPPED)
    )
