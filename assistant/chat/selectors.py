"""Reads of conversations, always scoped to their owner."""

from __future__ import annotations

from django.db.models import QuerySet

from assistant.chat.models import Conversation, Message


def conversations_of(*, user) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user)


def conversation_get(*, user, conversation_id) -> Conversation:
    """The user's conversation; Conversation.DoesNotExist for anyone else's (shown as 404)."""
    return Conversation.objects.get(id=conversation_id, user=user)


def message_get(*, user, message_id) -> Message:
    return Message.objects.select_related("conversation").get(id=message_id, conversation__user=user)


def history_for(*, message: Message, max_turns: int = 20) -> list[dict]:
    """Earlier completed turns of the conversation, oldest first, for the model's context."""
    earlier = (
        Message.objects.filter(conversation_id=message.conversation_id, created_at__lt=message.created_at)
        .exclude(status__in=[Message.Status.PENDING, Message.Status.STREAMING, Message.Status.ERROR])
        .order_by("-created_at")[: max_turns * 2 + 1]
    )
    turns = [{"role": m.role, "content": m.content} for m in reversed(list(earlier)) if m.content]
    # The latest user message is the current question; it is sent separately with its sources.
    if turns and turns[-1]["role"] == "user":
        turns.pop()
    return turns
