"""Reads of conversations, always scoped to their owner.

Messages form a tree: each one points at the message it follows (`parent`). Regenerating an
answer or editing a question adds a sibling; the conversation's `active_leaf` says which
branch is shown, and only that branch is sent to the model as history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from assistant.chat.models import Conversation, Message

SEARCH_MAX_CHARS = 200
SEARCH_LIMIT = 30
SNIPPET_CHARS = 120


def conversations_of(*, user) -> QuerySet[Conversation]:
    """The user's conversations, most recent first; deleted ones (awaiting purge) are left out."""
    return Conversation.objects.filter(user=user, deleted_at__isnull=True)


def conversation_get(*, user, conversation_id) -> Conversation:
    """The user's conversation; Conversation.DoesNotExist for anyone else's (shown as 404)."""
    return Conversation.objects.get(id=conversation_id, user=user, deleted_at__isnull=True)


def conversation_get_deleted(*, user, conversation_id) -> Conversation:
    """The user's conversation deleted moments ago (for undo); DoesNotExist once purged or for others."""
    return Conversation.objects.get(id=conversation_id, user=user, deleted_at__isnull=False)


def message_get(*, user, message_id) -> Message:
    return Message.objects.select_related("conversation").get(
        id=message_id, conversation__user=user, conversation__deleted_at__isnull=True
    )


# --- sidebar groups ----------------------------------------------------------------------------


@dataclass
class ConversationGroup:
    key: str  # pinned, today, yesterday, week, month, or YYYY-MM
    label: str
    conversations: list[Conversation] = field(default_factory=list)


def group_key(updated_at: dt.datetime, *, today: dt.date) -> tuple[str, str]:
    """(key, label) of the date group a conversation last active at `updated_at` falls in."""
    day = timezone.localtime(updated_at).date()
    if day >= today:
        return "today", _("Today")
    if day == today - dt.timedelta(days=1):
        return "yesterday", _("Yesterday")
    if day > today - dt.timedelta(days=7):
        return "week", _("Previous 7 days")
    if day > today - dt.timedelta(days=30):
        return "month", _("Previous 30 days")
    return day.strftime("%Y-%m"), date_format(day, "F Y")


def conversations_grouped(*, user, now: dt.datetime | None = None) -> list[ConversationGroup]:
    """The sidebar: pinned conversations first, then by last activity (Today, Yesterday,
    Previous 7 days, Previous 30 days, then one group per month), each newest first."""
    today = timezone.localtime(now or timezone.now()).date()
    pinned = ConversationGroup("pinned", _("Pinned"))
    groups: dict[str, ConversationGroup] = {}
    for conversation in conversations_of(user=user).order_by("-updated_at"):
        if conversation.pinned_at:
            pinned.conversations.append(conversation)
            continue
        key, label = group_key(conversation.updated_at, today=today)
        groups.setdefault(key, ConversationGroup(key, label)).conversations.append(conversation)
    pinned.conversations.sort(key=lambda c: c.pinned_at, reverse=True)
    return ([pinned] if pinned.conversations else []) + list(groups.values())


# --- search ------------------------------------------------------------------------------------


@dataclass
class SearchHit:
    conversation: Conversation
    snippet: str  # the matching bit of a message, empty when the title matched


def _snippet(text: str, query: str) -> str:
    flat = " ".join(text.split())
    at = flat.lower().find(query.lower())
    if at < 0:
        return flat[:SNIPPET_CHARS]
    start = max(0, at - SNIPPET_CHARS // 3)
    end = min(len(flat), start + SNIPPET_CHARS)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


def conversations_search(*, user, query: str, limit: int = SEARCH_LIMIT) -> list[SearchHit]:
    """The user's conversations whose title or any message contains `query` (case-insensitive),
    most recent first, with the matching passage of a message when the title does not match."""
    query = " ".join(query.split())[:SEARCH_MAX_CHARS]
    if not query:
        return []
    matching = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
    conversations = list(
        conversations_of(user=user)
        .filter(Q(title__icontains=query) | Exists(matching))
        .order_by("-updated_at")[:limit]
    )
    hits = []
    for conversation in conversations:
        snippet = ""
        if query.lower() not in conversation.title.lower():
            text = (
                Message.objects.filter(conversation=conversation, content__icontains=query)
                .order_by("-created_at")
                .values_list("content", flat=True)
                .first()
            )
            snippet = _snippet(text or "", query)
        hits.append(SearchHit(conversation, snippet))
    return hits


# --- branches ----------------------------------------------------------------------------------


@dataclass
class Version:
    """Where a message sits among its siblings (the answers to one question, or the edits of one)."""

    index: int  # 1-based
    count: int
    previous_id: str | None
    next_id: str | None


def _tree(conversation: Conversation) -> tuple[dict, dict]:
    """All the conversation's messages by id, and each parent's children in creation order."""
    messages = list(
        Message.objects.filter(conversation=conversation).order_by("created_at", "id").prefetch_related("attachments")
    )
    by_id = {m.id: m for m in messages}
    children: dict = {}
    for m in messages:
        children.setdefault(m.parent_id, []).append(m)
    return by_id, children


def latest_leaf(message: Message, children: dict) -> Message:
    """Follow the newest child down to the end of the branch."""
    while children.get(message.id):
        message = children[message.id][-1]
    return message


def thread_of(*, conversation: Conversation) -> list[Message]:
    """The messages of the branch shown, oldest first; each carries `.version` (a Version)."""
    by_id, children = _tree(conversation)
    if not by_id:
        return []
    if conversation.active_leaf_id is None or conversation.active_leaf_id not in by_id:
        # Messages written without the branch pointers (by hand or by another tool): one straight line.
        path = sorted(by_id.values(), key=lambda m: (m.created_at, str(m.id)))
        for m in path:
            m.version = Version(1, 1, None, None)
        return path
    leaf = by_id[conversation.active_leaf_id]
    path = []
    node = leaf
    while node is not None:
        path.append(node)
        node = by_id.get(node.parent_id)
    path.reverse()
    for m in path:
        siblings = children.get(m.parent_id, [])
        i = next(k for k, s in enumerate(siblings) if s.id == m.id)
        m.version = Version(
            i + 1,
            len(siblings),
            str(siblings[i - 1].id) if i > 0 else None,
            str(siblings[i + 1].id) if i + 1 < len(siblings) else None,
        )
    return path


def branch_leaf_of(*, message: Message) -> Message:
    """The newest message at the end of the branch going through `message`."""
    _, children = _tree(message.conversation)
    return latest_leaf(message, children)


def versions_of(*, message: Message) -> Version:
    siblings = list(
        Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
    i = siblings.index(message.id)
    return Version(
        i + 1,
        len(siblings),
        str(siblings[i - 1]) if i > 0 else None,
        str(siblings[i + 1]) if i + 1 < len(siblings) else None,
    )


_HISTORY_EXCLUDED = (Message.Status.PENDING, Message.Status.STREAMING, Message.Status.ERROR)


def question_of(*, message: Message) -> str:
    """The question an answer replies to: its parent, or for messages without parents the latest
    question written before it."""
    if message.parent_id:
        return Message.objects.filter(id=message.parent_id).values_list("content", flat=True).first() or ""
    return (
        Message.objects.filter(
            conversation_id=message.conversation_id, role=Message.Role.USER, created_at__lte=message.created_at
        )
        .order_by("-created_at")
        .values_list("content", flat=True)
        .first()
        or ""
    )


def history_for(*, message: Message, max_turns: int = 20) -> list[dict]:
    """Earlier completed turns of the answer's branch, oldest first, for the model's context.

    Only the branch leading to `message` counts: answers that were regenerated and questions
    that were edited away are never shown to the model."""
    if message.parent_id:
        by_id = {
            m["id"]: m
            for m in Message.objects.filter(conversation_id=message.conversation_id).values(
                "id", "parent_id", "role", "content", "status"
            )
        }
        chain = []
        node = by_id.get(message.parent_id)
        node = by_id.get(node["parent_id"]) if node else None  # skip the current question
        while node is not None and len(chain) < max_turns * 2:
            if node["status"] not in _HISTORY_EXCLUDED and node["content"]:
                chain.append({"role": node["role"], "content": node["content"]})
            node = by_id.get(node["parent_id"])
        return list(reversed(chain))
    earlier = (
        Message.objects.filter(conversation_id=message.conversation_id, created_at__lt=message.created_at)
        .exclude(status__in=_HISTORY_EXCLUDED)
        .order_by("-created_at")[: max_turns * 2 + 1]
    )
    turns = [{"role": m.role, "content": m.content} for m in reversed(list(earlier)) if m.content]
    # The latest user message is the current question; it is sent separately with its sources.
    if turns and turns[-1]["role"] == "user":
        turns.pop()
    return turns

