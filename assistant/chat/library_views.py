"""Pinning a conversation to libraries from the chat page ("search only these").

Another user's conversation is a 404; a library that is not shared with the user is refused
with a 400 that does not say whether it exists.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from assistant.chat.library_pins import PINS_MAX, conversation_libraries_set, conversation_start_pinned
from assistant.chat.models import Conversation
from assistant.chat.services import InvalidInput
from assistant.chat.views import own_conversation
from connectors.request_input import RequestInvalid, answers_bad_input, body_fields, form_list, wants_json


def _pins_input(request: HttpRequest) -> list[str]:
    return form_list(body_fields(request), "libraries", max_items=PINS_MAX, max_chars=100)


def _answer(request: HttpRequest, conversation: Conversation, libraries):
    if wants_json(request):
        return JsonResponse(
            {"conversation": str(conversation.id), "libraries": [{"id": str(lib.id), "name": lib.name} for lib in libraries]}
        )
    return redirect(conversation)


@login_required
@require_POST
@answers_bad_input
def conversation_libraries(request: HttpRequest, conversation_id):
    """Pin exactly the libraries sent (none: unpin) to the user's conversation."""
    conversation = own_conversation(request, conversation_id)
    try:
        libraries = conversation_libraries_set(conversation=conversation, library_ids=_pins_input(request))
    except InvalidInput as exc:
        raise RequestInvalid(str(exc), param="libraries") from None
    return _answer(request, conversation, libraries)


@login_required
@require_POST
@answers_bad_input
def conversation_new_pinned(request: HttpRequest):
    """A new conversation pinned to the libraries sent."""
    ids = _pins_input(request)
    if not ids:
        raise RequestInvalid("Pick at least one library.", param="libraries")
    try:
        conversation = conversation_start_pinned(user=request.user, library_ids=ids)
    except InvalidInput as exc:
        raise RequestInvalid(str(exc), param="libraries") from None
    return _answer(request, conversation, list(conversation.libraries.all()))
