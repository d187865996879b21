"""Writes on conversations and messages."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from assistant.chat import answer_relay as relay
from assistant.chat.models import Attachment, Conversation, Message
from assistant.chat.selectors import branch_leaf_of

MAX_QUESTION_CHARS = 8000
TITLE_CHARS = 60
# A deleted conversation can be restored (the "Undo" toast) until the beat task purges it.
PURGE_DELETED_AFTER = dt.timedelta(minutes=10)


class InvalidInput(ValueError):
    """Input a user must fix; the message says how."""


def conversation_create(*, user) -> Conversation:
    return Conversation.objects.create(user=user)


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """A title the user chose; automatic titles never replace it."""
    title = " ".join(title.split())
    if not title:
        raise InvalidInput("A conversation title cannot be empty.")
    conversation.title = title[:200]
    conversation.title_source = Conversation.TitleSource.USER
    conversation.save(update_fields=["title", "title_source", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    """Hide the conversation at once; it can be restored until purged (PURGE_DELETED_AFTER)."""
    conversation.deleted_at = timezone.now()
    Conversation.objects.filter(id=conversation.id).update(deleted_at=conversation.deleted_at)


def conversation_restore(*, conversation: Conversation) -> Conversation:
    """Undo a delete: the conversation is back where it was in the sidebar."""
    conversation.deleted_at = None
    Conversation.objects.filter(id=conversation.id).update(deleted_at=None)
    return conversation


def conversations_purge_deleted(*, older_than: dt.timedelta = PURGE_DELETED_AFTER, now=None) -> int:
    """Really delete conversations (messages, files) deleted longer ago than `older_than`."""
    cutoff = (now or timezone.now()) - older_than
    _count, per_model = Conversation.objects.filter(deleted_at__lt=cutoff).delete()
    return per_model.get(Conversation._meta.label, 0)


def conversation_pin(*, conversation: Conversation, pinned: bool) -> Conversation:
    """Pin (listed first, newest pin on top) or unpin; its place by recency does not change."""
    conversation.pinned_at = timezone.now() if pinned else None
    Conversation.objects.filter(id=conversation.id).update(pinned_at=conversation.pinned_at)
    return conversation


def conversation_title_set_automatic(*, conversation: Conversation, title: str) -> bool:
    """Store a generated title unless the user renamed the conversation meanwhile."""
    updated = Conversation.objects.filter(
        id=conversation.id, title_source__in=[Conversation.TitleSource.DEFAULT, Conversation.TitleSource.QUESTION]
    ).update(title=title[:200], title_source=Conversation.TitleSource.MODEL)
    if updated:
        conversation.title, conversation.title_source = title[:200], Conversation.TitleSource.MODEL
    return bool(updated)


def provisional_title(question: str) -> str:
    first_line = " ".join(question.split())
    return first_line if len(first_line) <= TITLE_CHARS else first_line[: TITLE_CHARS - 1].rstrip() + "…"


def _attachment_ids(conversation: Conversation, attachment_ids) -> list[uuid.UUID]:
    """The ids, checked: each must be a file attached to this conversation (any other is refused)."""
    if not attachment_ids:
        return []
    if not isinstance(attachment_ids, list | tuple):
        raise InvalidInput(_("The attached files must be given as a list of ids."))
    try:
        ids = {uuid.UUID(str(value)) for value in attachment_ids}
    except ValueError:
        raise InvalidInput(_("One of the attached files is not known; remove it and attach it again.")) from None
    if Attachment.objects.filter(conversation=conversation, id__in=ids).count() != len(ids):
        raise InvalidInput(_("One of the attached files is not known; remove it and attach it again."))
    return list(ids)


def _check_question(content) -> str:
    if not isinstance(content, str):
        raise InvalidInput(_("The question must be text."))
    content = content.strip()
    if not content:
        raise InvalidInput(_("Type a question first."))
    if len(content) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            _("The question is too long (%(length)s characters); the limit is %(limit)s.")
            % {"length": len(content), "limit": MAX_QUESTION_CHARS}
        )
    return content


def _check_idle(conversation: Conversation) -> None:
    if Message.objects.filter(
        conversation=conversation, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
    ).exists():
        raise InvalidInput(_("Wait for the current answer to finish, or stop it, before asking again."))


def _current_leaf(conversation: Conversation) -> Message | None:
    """The message a new question follows: the end of the branch shown."""
    if conversation.active_leaf_id:
        return conversation.active_leaf
    # Messages written without branch pointers (by hand, or by another tool): link them in order.
    previous = None
    for message in Message.objects.filter(conversation=conversation).order_by("created_at", "id"):
        if previous is not None and message.parent_id is None:
            Message.objects.filter(id=message.id).update(parent=previous)
        previous = message
    return previous


def _ask(conversation: Conversation, *, content: str, parent: Message | None) -> tuple[Message, Message]:
    question = Message(conversation=conversation, parent=parent, role=Message.Role.USER, content=content)
    answer = Message(
        conversation=conversation, parent=question, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
    )
    Message.objects.bulk_create([question, answer])  # one INSERT (ids are made here; no signals on messages)
    conversation.active_leaf = answer
    update = ["active_leaf", "updated_at"]
    if conversation.title_source == Conversation.TitleSource.DEFAULT:
        conversation.title = provisional_title(content)
        conversation.title_source = Conversation.TitleSource.QUESTION
        update += ["title", "title_source"]
    conversation.save(update_fields=update)
    return question, answer


@transaction.atomic
def question_submit(
    *, conversation: Conversation, content: str, attachment_ids: list | None = None
) -> tuple[Message, Message]:
    """Store the user's question and an empty answer that the stream view fills.

    The question follows the end of the branch shown. Files attached in the composer
    (`attachment_ids`, not yet sent with a question) are linked to the question.
    """
    content = _check_question(content)
    _check_idle(conversation)
    ids = _attachment_ids(conversation, attachment_ids)
    question, answer = _ask(conversation, content=content, parent=_current_leaf(conversation))
    Attachment.objects.filter(conversation=conversation, id__in=ids, message__isnull=True).update(message=question)
    return question, answer


def first_question_submit(*, conversation: Conversation, content: str) -> tuple[Message, Message]:
    """question_submit for a conversation created in the same transaction (with, at most, finished
    turns): no answer can be under way and its branch's end is known, so neither is looked up."""
    return _ask(conversation, content=_check_question(content),
                parent=conversation.active_leaf if conversation.active_leaf_id else None)


@transaction.atomic
def question_edit(*, message: Message, content: str) -> tuple[Message, Message]:
    """Ask an edited version of an earlier question: a new branch from the same point, with a
    new answer. The old question and everything after it stay reachable as the other version."""
    if message.role != Message.Role.USER:
        raise InvalidInput(_("Only your own questions can be edited."))
    content = _check_question(content)
    conversation = message.conversation
    _check_idle(conversation)
    if conversation.active_leaf_id is None:
        _current_leaf(conversation)
        message.refresh_from_db(fields=["parent"])
    return _ask(conversation, content=content, parent=message.parent)


@transaction.atomic
def answer_regenerate(*, message: Message) -> Message:
    """A new answer to the same question; the earlier answers stay reachable as versions."""
    if message.role != Message.Role.ASSISTANT:
        raise InvalidInput(_("Only an answer can be regenerated."))
    conversation = message.conversation
    _check_idle(conversation)
    if conversation.active_leaf_id is None:
        _current_leaf(conversation)
        message.refresh_from_db(fields=["parent"])
    question = message.parent
    if question is None or question.role != Message.Role.USER:
        raise InvalidInput(_("There is no question to answer again."))
    answer = Message.objects.create(
        conversation=conversation, parent=question, role=Message.Role.ASSISTANT, status=Message.Status.PENDING
    )
    conversation.active_leaf = answer
    conversation.save(update_fields=["active_leaf", "updated_at"])
    return answer


def message_activate(*, message: Message) -> Message:
    """Show the branch through `message` (a version picked in "< 1/2 >"): its newest end."""
    leaf = branch_leaf_of(message=message)
    conversation = message.conversation
    conversation.active_leaf = leaf
    Conversation.objects.filter(id=conversation.id).update(active_leaf=leaf)
    return leaf


def answer_stop(*, message: Message) -> bool:
    """Ask a streaming answer to stop; the stream notices and keeps the partial text."""
    return bool(
        Message.objects.filter(
            id=message.id, status__in=[Message.Status.PENDING, Message.Status.STREAMING]
        ).update(status=Message.Status.STOPPED)
    )


def answers_sweep_stale(*, now=None) -> int:
    """Answers that a dead answers worker left "in progress" while nobody read them: failed, with
    Retry (a reader would notice too: assistant/chat/answer_worker.py). Live ones keep their
    worker's heartbeat in Redis; recent ones are left for the next sweep."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=relay.ALIVE_SECONDS * 2)
    text = _("The answer was interrupted (its worker stopped). Press Retry.")
    client = relay.sync_connection()
    failed = 0
    for message_id in Message.objects.filter(status=Message.Status.STREAMING, updated_at__lt=cutoff).values_list(
        "id", flat=True
    )[:500]:
        if not client.exists(relay.alive_key(message_id)):
            failed += answer_fail_retryable(message_id=message_id, text=text, statuses=(Message.Status.STREAMING,),
                                            client=client)
    client.close()
    return failed


def answer_fail_retryable(
    *, message_id, text: str, statuses=(Message.Status.PENDING, Message.Status.STREAMING), client=None
) -> bool:
    """An answer still in one of `statuses` becomes a failed one with Retry (once, whoever notices
    first: a follower, the worker itself, beat's sweep); its readers get the error and the end."""
    if not Message.objects.filter(id=message_id, status__in=statuses).update(
        status=Message.Status.ERROR, error=text, error_retryable=True
    ):
        return False
    connection = client or relay.sync_connection()
    try:
        relay.publish_ending(connection, message_id, "error",
                            {"message": text, "kind": "worker", "retryable": True, "partial": False})
    finally:
        if client is None:
            connection.close()
    return True
