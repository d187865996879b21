"""Reads of conversations, always scoped to their owner.

Messages form a tree: each one points at the message it follows (`parent`). Regenerating an
answer or editing a question adds a sibling; the conversation's `active_leaf` says which
branch is shown, and only that branch is sent to the model as history.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from assistant.chat.models import Attachment, Conversation, ConversationShare, Message
from assistant.rag.prompts import SERVER_PATH
from assistant.rag.query_sources import is_query, query_shown
from connectors.selectors import acl_groups_of, documents_visible
from connectors.sql_questions import queries_permitted

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
    # `is_shared`: the row's share button is lit for a conversation shared with anyone (chat.sharing).
    shared = Exists(ConversationShare.objects.filter(conversation=OuterRef("pk")))
    for conversation in conversations_of(user=user).annotate(is_shared=shared).order_by("-updated_at"):
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
        return _branch(message, max_turns)[1]
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


def question_and_history(*, message: Message, max_turns: int = 20) -> tuple[str, list[dict]]:
    """question_of and history_for at once: one query for an answer in a branch."""
    if message.parent_id:
        return _branch(message, max_turns)
    return question_of(message=message), history_for(message=message, max_turns=max_turns)


def _branch(message: Message, max_turns: int) -> tuple[str, list[dict]]:
    """The question `message` answers (its parent) and the completed turns before it on its branch."""
    by_id = {
        m["id"]: m
        for m in Message.objects.filter(conversation_id=message.conversation_id).values(
            "id", "parent_id", "role", "content", "status"
        )
    }
    chain = []
    question = by_id.get(message.parent_id)
    node = by_id.get(question["parent_id"]) if question else None  # skip the current question
    while node is not None and len(chain) < max_turns * 2:
        if node["status"] not in _HISTORY_EXCLUDED and node["content"]:
            chain.append({"role": node["role"], "content": node["content"]})
        node = by_id.get(node["parent_id"])
    return (question["content"] or "") if question else "", list(reversed(chain))


# --- citations, as the reader may see them now ---------------------------------------------------
#
# A stored answer keeps the title, location and quoted passage of each source it cited. Access
# can change afterwards (a user leaves a group, a document's ACL narrows, an attachment is
# removed), so every view and replay shows stored citations through `citations_shown`, which
# re-checks them against the reader's access at that moment.

#: Connector kinds whose locations are not places on the server: web pages (their URL) and
#: database rows ("db.table (id=3)"). Folder, upload and file-based locations are server paths.
_LOCATION_KINDS_SHOWN = frozenset({"web", "database"})
_WEB_URL = re.compile(r"^https?://", re.IGNORECASE)


def location_shown(*, user, location: str, connector_kind: str) -> str:
    """A document's location as `user` may see it: staff see it as stored; others never see a
    path on the server (they get the document's title and connector name instead)."""
    location = location or ""
    if getattr(user, "is_staff", False):
        return location
    if connector_kind in _LOCATION_KINDS_SHOWN and not SERVER_PATH.match(location):
        return location
    return ""


@lru_cache(maxsize=1)
def _attachment_url_prefix() -> str:
    zero = uuid.UUID(int=0)
    return reverse("chat:attachment", args=[zero]).split(str(zero))[0]


def citation_is_attachment(citation: dict) -> bool:
    """A citation of a file attached to the conversation (private to its owner), not of the index."""
    return str(citation.get("document_url", "")).startswith(_attachment_url_prefix())


def _uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def _readable(*, user, citations: list[dict]) -> tuple[dict, set]:
    """(connector kind by readable document id, readable attachment ids) among `citations`."""
    documents, files = set(), set()
    for c in citations:
        ref = _uuid_or_none(c.get("document_id"))
        if ref is not None:
            (files if citation_is_attachment(c) else documents).add(ref)
    return _readable_ids(user=user, documents=documents, files=files)


def _readable_ids(*, user, documents: set, files: set) -> tuple[dict, set]:
    """(connector kind by readable document id, readable attachment ids) among the given ids:
    documents under the reader's groups now, attachments only to their conversation's owner."""
    kinds = {}
    if documents:
        rows = documents_visible(user=user).filter(id__in=documents).values_list("id", "connector__kind")
        kinds = {str(i): kind for i, kind in rows}
    readable_files = set()
    if files:
        readable_files = {
            str(i) for i in Attachment.objects.filter(
                id__in=files, conversation__user=user, conversation__deleted_at__isnull=True
            ).values_list("id", flat=True)
        }
    return kinds, readable_files


def citations_shown(*, user, messages) -> dict:
    """Each message's stored citations as `user` may see them now, by message id.

    A citation the reader may still see comes back with `"available": True` (its location
    blanked where it is a server path the reader may not see); any other one as only
    `{"n": n, "available": False}`, with no title, location or passage.
    """
    stored = {m.id: [c for c in (m.citations or []) if isinstance(c, dict)] for m in messages}
    kinds, files = _readable(user=user, citations=[c for cs in stored.values() for c in cs if not is_query(c)])
    queries = queries_shown(user=user, messages=[m for m in messages if any(is_query(c) for c in stored[m.id])])
    shown = {}
    for message_id, citations in stored.items():
        shown[message_id] = []
        for c in citations:
            ref = str(_uuid_or_none(c.get("document_id")))
            if is_query(c):  # a query result: its SQL and rows are under the answer
                hidden = {"n": c.get("n"), "available": False}
                shown[message_id].append({**c, "available": True} if ref in queries else hidden)
            elif citation_is_attachment(c) and ref in files:
                shown[message_id].append({**c, "available": True})
            elif not citation_is_attachment(c) and ref in kinds:
                location = location_shown(user=user, location=str(c.get("location") or ""), connector_kind=kinds[ref])
                url = str(c.get("url") or "")
                url = url if _WEB_URL.match(url) or getattr(user, "is_staff", False) else ""
                shown[message_id].append({**c, "location": location, "url": url, "available": True})
            else:
                shown[message_id].append({"n": c.get("n"), "available": False})
    return shown


# The chips that citations.render_html puts in an answer (its HTML is ours, sanitised by nh3).
_CHIP = re.compile(r'<a\b[^>]*\bclass="cite"[^>]*>\[(\d{1,3})\]</a>')


def answer_html_shown(rendered_html: str, citations: list[dict], label: str = "") -> str:
    """A stored answer's HTML with the chips of citations the reader may no longer see made
    into unlabeled markers (no title, no link) titled `label` ("Source no longer available")."""
    available = {c.get("n") for c in citations if c.get("available")}
    label = html.escape(label or _("Source no longer available"))

    def chip(match: re.Match) -> str:
        n = int(match.group(1))
        if n in available:
            return match.group(0)
        return f'<span class="cite cite-unavailable" data-n="{n}" title="{label}">[{n}]</span>'

    return _CHIP.sub(chip, rendered_html or "")


def messages_with_citations_shown(*, user, messages: list[Message]) -> list[Message]:
    """The messages, each given `shown_citations` and `shown_html` (see citations_shown)."""
    shown = citations_shown(user=user, messages=messages)
    extras = steps_and_sources_shown(user=user, messages=messages)
    for m in messages:
        m.shown_citations = shown[m.id]
        m.shown_html = answer_html_shown(m.rendered_html, shown[m.id])
        m.shown_steps, m.shown_sources = extras[m.id]["steps"], extras[m.id]["sources"]
    return messages


# --- the steps and sources of an answer, as the reader may see them now --------------------------
#
# Message.steps (the tool calls of an agent answer, each with the documents its result showed)
# and Message.sources (every document the answer was given) are re-checked like citations, but
# a document the reader may no longer see simply disappears: there is no [n] chip to keep.

_SOURCE_KEYS = ("n", "title", "url", "connector", "document_id", "kind", "passage", "cited")
_UNAVAILABLE_TITLE = "…"


def _is_attachment_source(source: dict) -> bool:
    return source.get("kind") == "attachment" or str(source.get("url") or "").startswith(_attachment_url_prefix())


def queries_shown(*, user, messages) -> set[str]:
    """The ids of the query results stored with `messages` (their sources and their steps') that
    `user` may still see: they may still query the connector and every dataset read, under the same
    ACL (connectors.sql_questions.queries_permitted). Read from the index's side only."""
    queries = [s for m in messages for s in stored_queries(m)]
    return queries_permitted(groups=acl_groups_of(user), queries=queries) if queries else set()


def stored_queries(message: Message) -> list[dict]:
    """The query results stored with an answer: among its sources and its steps' sources."""
    steps = [s for s in message.steps or [] if isinstance(s, dict)]
    sources = [*(message.sources or []), *(x for step in steps for x in step.get("sources") or [])]
    return [s for s in sources if is_query(s)]


def _source_shown(source: dict, kinds: dict, files: set, queries: tuple = (set(), None)) -> dict | None:
    """The entry with only its known keys and a link to our own viewer, or None when the
    reader may not see its document (or attachment, or query result: `queries` is the ids the
    reader may see, and the message's id) now."""
    if is_query(source):
        allowed, message_id = queries
        return query_shown(source, message_id) if str(source.get("query_id")) in allowed else None
    ref = str(_uuid_or_none(source.get("document_id")))
    attachment = _is_attachment_source(source)
    if ref not in (files if attachment else kinds):
        return None
    viewer = reverse("chat:attachment" if attachment else "chat:document", args=[ref])
    url = str(source.get("url") or "")
    shown = {key: source[key] for key in _SOURCE_KEYS if key in source}
    return {**shown, "kind": "attachment" if attachment else "document", "url": url if url.startswith(viewer) else viewer}


def _redacted(value, titles: set[str]):
    """`value` (a label, a summary, the arguments) with the titles of documents the reader lost
    replaced by an ellipsis."""
    if isinstance(value, str):
        for title in titles:
            value = value.replace(title, _UNAVAILABLE_TITLE)
        return value
    if isinstance(value, dict):
        return {k: _redacted(v, titles) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, titles) for v in value]
    return value


def _step_shown(step: dict, kinds: dict, files: set, queries: tuple) -> dict:
    sources = [s for s in step.get("sources") or [] if isinstance(s, dict)]
    checked = [(s, _source_shown(s, kinds, files, queries)) for s in sources]
    shown = [x for _, x in checked if x is not None]
    lost = {str(s["title"]) for s, x in checked if x is None and s.get("title")} - {x.get("title") for x in shown}
    step = {**step, "sources": shown}
    for key in ("label", "summary", "error", "arguments"):
        if lost and key in step:
            step[key] = _redacted(step[key], lost)
    return step


def steps_and_sources_shown(*, user, messages) -> dict:
    """Each message's {"steps": [...], "sources": [...]} as `user` may see them now, by message id:
    a document they can no longer read is dropped from the sources and from every step's
    sources (its title blanked where a step's label or arguments named it); an attachment is
    shown only to its conversation's owner. One query for all the messages."""
    stored = {}
    for m in messages:
        steps = [s for s in (m.steps or []) if isinstance(s, dict)]
        sources = [s for s in (m.sources or []) if isinstance(s, dict)]
        stored[m.id] = (steps, sources)
    documents, files = set(), set()
    for steps, sources in stored.values():
        for s in [*sources, *(x for step in steps for x in step.get("sources") or [] if isinstance(x, dict))]:
            ref = _uuid_or_none(s.get("document_id"))
            if ref is not None:
                (files if _is_attachment_source(s) else documents).add(ref)
    kinds, readable_files = _readable_ids(user=user, documents=documents, files=files)
    allowed = queries_shown(user=user, messages=messages)
    return {
        message_id: {
            "steps": [_step_shown(step, kinds, readable_files, (allowed, message_id)) for step in steps],
            "sources": [
                x for s in sources if (x := _source_shown(s, kinds, readable_files, (allowed, message_id))) is not None
            ],
        }
        for message_id, (steps, sources) in stored.items()
    }
