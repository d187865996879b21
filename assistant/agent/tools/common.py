"""What the knowledge tools share: who may read what (the user's ACL and the assistant's
connectors), a result cut to its token budget, and a passage's entry in a result's sources."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from assistant.agent.registry import ToolContext, ToolError
from connectors.models import Connector, Document
from connectors.selectors import acl_filter, connector_visible_q
from inference.tokens import approx_token_count

_PIECE = re.compile(r"\w{1,4}|[^\w\s]", re.UNICODE)  # inference.tokens' unit, to find where a budget ends


def reader_groups(context: ToolContext) -> list[str]:
    """The acting user's groups; a disabled (or deleted) account reads nothing, not even public documents."""
    if not get_user_model().objects.filter(pk=context.user_id, is_active=True).exists():
        raise ToolError(_("This account is disabled: it cannot read the company's documents."))
    return list(context.groups or [])


def allowed_connector_ids(context: ToolContext) -> tuple:
    """The assistant's connectors (empty: no restriction beyond the ACL)."""
    return tuple(getattr(context.filters, "connector_ids", ()) or ())


def connectors_visible(context: ToolContext, groups: list[str]) -> QuerySet[Connector]:
    """Connectors the user may see: public or shared with one of their groups, or holding a
    document they may read (an item's own ACL can open it in a connector that is not shared),
    within the assistant's connectors."""
    shared = connector_visible_q(groups)
    readable = Exists(Document.objects.filter(acl_filter(groups), connector=OuterRef("pk")))
    ids = Connector.objects.filter(shared).values("id")
    connectors = Connector.objects.filter(Q(id__in=ids) | readable)
    allowed = allowed_connector_ids(context)
    if allowed:
        connectors = connectors.filter(id__in=allowed)
    return connectors.order_by("name")


def documents_readable(context: ToolContext, groups: list[str]) -> QuerySet[Document]:
    documents = Document.objects.filter(acl_filter(groups))
    allowed = allowed_connector_ids(context)
    if allowed:
        documents = documents.filter(connector_id__in=allowed)
    return documents


def cut_to_tokens(text: str, tokens: int) -> str:
    """The longest start of `text` within `tokens` (inference.tokens' count), ended at a line or
    sentence break when one lies in its last fifth."""
    return text[: cut_end(text, tokens)].rstrip()


def cut_end(text: str, tokens: int, start: int = 0) -> int:
    """Where the window of `text` from `start` holding at most `tokens` ends (see cut_to_tokens);
    reads only that window, so walking a long document part by part stays linear."""
    if tokens <= 0:
        return start
    end = None
    for count, match in enumerate(_PIECE.finditer(text, start), start=1):
        if count > tokens:
            end = match.start()
            break
    if end is None:
        return len(text)
    floor = start + int((end - start) * 0.8)
    for mark in ("\n\n", "\n", ". "):
        at = text.rfind(mark, floor, end)
        if at > start:
            return at + len(mark)
    return end


def tokens_of(text: str) -> int:
    return approx_token_count(text)


def source_entry(passage) -> dict:
    """One document shown by a result, as a step's sources list it."""
    return {
        "title": passage.title,
        "url": passage.url,
        "connector": passage.connector,
        "document_id": passage.document_id,
        "kind": passage.kind,
    }


def sources_of(passages) -> list[dict]:
    """One entry per document, in the order they were shown."""
    seen: dict[str, dict] = {}
    for passage in passages:
        seen.setdefault(passage.document_id, source_entry(passage))
    return list(seen.values())
