"""A conversation pinned to libraries searches only them ("search only these").

Pins narrow the search; they never widen it: retrieval still filters by the reader's ACL, so a
pinned library that was unshared since finds nothing, and its name is no longer shown. Pins
replace the assistant's own connectors for that conversation.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from assistant.chat.assistants import assistant_search_filters
from assistant.chat.models import Assistant, Conversation
from assistant.chat.services import InvalidInput
from connectors.library_selectors import libraries_visible
from connectors.models import Connector
from connectors.search import SearchFilters

PINS_MAX = 20


def conversation_search_filters(*, conversation: Conversation | None, assistant: Assistant) -> SearchFilters:
    """The pinned libraries when there are any, else the assistant's connectors."""
    if conversation is not None and conversation.pk:
        pinned = tuple(sorted(str(pk) for pk in conversation.libraries.values_list("id", flat=True)))
        if pinned:
            return SearchFilters(connector_ids=pinned)
    return assistant_search_filters(assistant=assistant)


def conversation_libraries_shown(*, conversation: Conversation | None, user) -> list[Connector]:
    """The pinned libraries the user may still read (the others are pinned but find nothing)."""
    if conversation is None or not conversation.pk:
        return []
    return list(libraries_visible(user=user).filter(pinned_in=conversation))


def _visible_libraries(*, user, library_ids: list[str]) -> list[Connector]:
    wanted = set(library_ids)
    if len(wanted) > PINS_MAX:
        raise InvalidInput(_("Pin at most %(limit)d libraries to a conversation.") % {"limit": PINS_MAX})
    try:
        found = list(libraries_visible(user=user).filter(id__in=wanted))
    except (ValidationError, ValueError):
        found = []
    if len(found) != len(wanted):
        raise InvalidInput(_("No such library, or it is not shared with you."))
    return found


@transaction.atomic
def conversation_libraries_set(*, conversation: Conversation, library_ids: list[str]) -> list[Connector]:
    """Pin exactly these libraries (each one the user may read); an empty list unpins."""
    libraries = _visible_libraries(user=conversation.user, library_ids=library_ids)
    conversation.libraries.set(libraries)
    conversation.save(update_fields=["updated_at"])
    return libraries


@transaction.atomic
def conversation_start_pinned(*, user, library_ids: list[str]) -> Conversation:
    """A new conversation that searches only these libraries."""
    libraries = _visible_libraries(user=user, library_ids=library_ids)
    conversation = Conversation.objects.create(user=user)
    conversation.libraries.set(libraries)
    return conversation
