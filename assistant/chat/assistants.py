"""Assistants: reads (which ones a user may pick, which one answers a conversation) and writes.

An assistant brings its instructions (added to the system prompt), the connectors it may
search (none = every source the user may see; the ACL always applies on top) and the
model parameters of its answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from assistant.agent.registry import all_tools, tool_named
from assistant.chat.memory_tools import MEMORY_TOOL_NAMES
from assistant.chat.models import Assistant, Conversation
from assistant.chat.services import InvalidInput
from connectors.models import Connector, Document, SyncRun
from connectors.selectors import acl_groups_of, connector_visible_q
from connectors.search import NO_FILTERS, SearchFilters

DEFAULT_NAME = "General assistant"


class DefaultAssistantProtected(InvalidInput):
    """The default assistant cannot be deleted or deactivated."""


# ---------------------------------------------------------------- selectors


def assistants_available(*, user) -> QuerySet[Assistant]:
    """Assistants `user` may pick, the default first: active ones open to everyone or to one
    of the user's groups (the default is open to everyone)."""
    open_to_user = Q(is_default=True) | Q(groups__isnull=True)
    if user.is_authenticated:
        open_to_user |= Q(groups__in=user.groups.all())
    ids = Assistant.objects.filter(open_to_user, is_active=True).values("id")
    return Assistant.objects.filter(id__in=ids).order_by("-is_default", "name")


def assistant_default() -> Assistant:
    """The default assistant (created by the data migration; recreated if someone removed it)."""
    assistant = Assistant.objects.filter(is_default=True).first()
    if assistant is None:
        assistant, _created = Assistant.objects.get_or_create(name=DEFAULT_NAME, defaults={"is_default": True})
        if not assistant.is_default:
            assistant.is_default = True
            assistant.is_active = True
            assistant.save(update_fields=["is_default", "is_active", "updated_at"])
    return assistant


def assistant_get_available(*, user, assistant_id) -> Assistant:
    """An assistant `user` may pick; Assistant.DoesNotExist otherwise."""
    return assistants_available(user=user).get(id=assistant_id)


def assistant_for_conversation(conversation: Conversation | None) -> Assistant:
    """Who answers: the conversation's assistant if its owner may still use it, else the default."""
    if conversation is not None and conversation.assistant_id:
        assistant = assistants_available(user=conversation.user).filter(id=conversation.assistant_id).first()
        if assistant is not None:
            return assistant
    return assistant_default()


def connectors_visible_to(*, user, groups: list[str] | None = None) -> QuerySet[Connector]:
    """Connectors whose documents the user may read: public ones, shared with one of their groups,
    and libraries of theirs or shared with them (`groups`: the user's principals, when the caller
    has them already)."""
    if not user.is_authenticated or not user.is_active:
        return Connector.objects.none()
    groups = acl_groups_of(user) if groups is None else groups
    return Connector.objects.filter(connector_visible_q(groups)).distinct()


def assistant_search_filters(*, assistant: Assistant) -> SearchFilters:
    """Retrieval restricted to the assistant's connectors (none selected: no restriction)."""
    ids = tuple(sorted(str(pk) for pk in assistant.connectors.values_list("id", flat=True)))
    return SearchFilters(connector_ids=ids) if ids else NO_FILTERS


def connectors_still_syncing(
    *, assistant: Assistant, user, groups: list[str] | None = None, filters: SearchFilters | None = None
) -> list[str]:
    """Names of the connectors this answer may draw on whose first sync is running and has
    not indexed a document yet: answers cannot use them yet, and the user should know.
    (`groups` and `filters`: the user's groups and the assistant's search filters, when the
    caller has them already.)"""
    connectors = connectors_visible_to(user=user, groups=groups)
    if filters is None:
        filters = assistant_search_filters(assistant=assistant)
    if filters.connector_ids:
        connectors = connectors.filter(id__in=filters.connector_ids)
    return list(
        connectors.filter(
            Exists(SyncRun.objects.filter(connector=OuterRef("pk"), status__in=SyncRun.ACTIVE)),
            ~Exists(Document.objects.filter(connector=OuterRef("pk"))),
        )
        .order_by("name")
        .values_list("name", flat=True)
    )


def assistant_tool_choices() -> list[tuple[str, str]]:
    """The tools an admin may give an assistant: the registry's, less the memory tools (those
    follow each user's memory switch)."""
    return [(tool.name, tool.name) for tool in all_tools() if tool.name not in MEMORY_TOOL_NAMES]


def assistant_tool_names(*, assistant: Assistant, memory: bool) -> list[str]:
    """The tools its answers may offer the model: the assistant's own that exist, then `remember`
    and `forget` when the user turned memory on. Any other is never offered, and refused if called."""
    chosen = assistant.tools if isinstance(assistant.tools, list) else []
    names = [n for n in dict.fromkeys(chosen) if isinstance(n, str) and n not in MEMORY_TOOL_NAMES and tool_named(n)]
    return names + (list(MEMORY_TOOL_NAMES) if memory else [])


@dataclass(frozen=True)
class ModelParameters:
    temperature: float
    max_tokens: int
    model: str


def assistant_model_parameters(*, assistant: Assistant) -> ModelParameters:
    return ModelParameters(
        temperature=settings.LLM_TEMPERATURE if assistant.temperature is None else assistant.temperature,
        max_tokens=assistant.max_tokens or settings.LLM_MAX_TOKENS,
        model=assistant.model_name or settings.LLM_MODEL,
    )


# ----------------------------------------------------------------- services


@transaction.atomic
def conversation_assistant_set(*, conversation: Conversation, assistant_id) -> Assistant:
    """Pick who answers the conversation's next questions."""
    try:
        assistant = assistant_get_available(user=conversation.user, assistant_id=assistant_id)
    except (Assistant.DoesNotExist, ValidationError, ValueError, TypeError):
        raise InvalidInput(_("That assistant is not available; pick another one from the list.")) from None
    conversation.assistant = assistant
    conversation.save(update_fields=["assistant", "updated_at"])
    return assistant


@transaction.atomic
def assistant_make_default(*, assistant: Assistant) -> Assistant:
    """Make this assistant the default (the previous default stays, as an ordinary one)."""
    Assistant.objects.filter(is_default=True).exclude(id=assistant.id).update(is_default=False)
    assistant.is_default = True
    assistant.is_active = True
    assistant.save(update_fields=["is_default", "is_active", "updated_at"])
    return assistant


def assistant_delete(*, assistant: Assistant) -> None:
    """Delete an assistant; its conversations fall back to the default one."""
    if assistant.is_default:
        raise DefaultAssistantProtected(
            _("The default assistant cannot be deleted. Make another assistant the default first.")
        )
    assistant.delete()
