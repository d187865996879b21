"""Conversations shared with the token's owner, over the JSON API (docs/api.md), read-only.

    GET /api/v1/shared              conversations of others shared with the caller, latest activity first
    GET /api/v1/shared/<id>         one, with its messages as the shared page shows them

The same selectors as the /chat/shared/ pages, run as the caller (the viewer): a conversation
not shared with them is a 404, and every citation, source and step is re-checked against the
viewer's own access now (assistant/chat/shared_view.py). A citation they may not open comes as
`{"n": n, "available": false}` and nothing else; an answer still being written has no text yet.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from assistant.accounts.api_auth import token_required
from assistant.accounts.scopes import CONVERSATIONS_READ
from assistant.chat import sharing
from assistant.chat.api import BadRequest, absolute_citation, error_response, iso_time, method_not_allowed
from assistant.chat.models import Conversation, Message
from assistant.chat.shared_view import shared_thread


def _owner_name(conversation: Conversation) -> str:
    owner = conversation.user
    return owner.get_full_name() or owner.get_username()


def shared_conversation_json(request: HttpRequest, conversation: Conversation, *, shared_at=None) -> dict:
    return {
        "id": str(conversation.id),
        "object": "shared_conversation",
        "title": conversation.title,
        "owner": conversation.user.get_username(),
        "owner_name": _owner_name(conversation),
        "shared_at": iso_time(shared_at),
        "updated_at": iso_time(conversation.updated_at),
        "url": request.build_absolute_uri(reverse("chat:shared_conversation", args=[conversation.id])),
    }


def _citation(request: HttpRequest, citation: dict) -> dict:
    if citation.get("available"):
        return {**absolute_citation(request, citation), "available": True}
    return {"n": citation.get("n"), "available": False}


def _source(request: HttpRequest, source: dict) -> dict:
    if source.get("unavailable") or not source.get("url"):
        return source
    return {**source, "url": request.build_absolute_uri(source["url"])}


def _step(request: HttpRequest, step: dict) -> dict:
    return {**step, "sources": [_source(request, s) for s in step.get("sources") or []]}


def shared_message_json(request: HttpRequest, message: Message) -> dict:
    """A message of `shared_thread` (already re-checked for the viewer) as the API shows it."""
    answer = message.role == Message.Role.ASSISTANT
    return {
        "id": str(message.id),
        "object": "message",
        "conversation_id": str(message.conversation_id),
        "role": message.role,
        # The page shows no partial answer either: the text is the owner's once it is complete.
        "content": "" if message.in_progress else message.content,
        "status": message.status,
        "error": message.error or None,
        "citations": [_citation(request, c) for c in message.shown_citations] if answer else [],
        "sources": [_source(request, s) for s in message.shown_sources] if answer else [],
        "steps": [_step(request, s) for s in message.shown_steps] if answer else [],
        "model": message.model or None,
        "created_at": iso_time(message.created_at),
    }


@token_required(scope=CONVERSATIONS_READ)
def shared_list(request: HttpRequest):
    if request.method != "GET":
        return method_not_allowed(request, "GET")
    entries = sharing.conversations_shared_with(user=request.user)
    data = [{**shared_conversation_json(request, e.conversation, shared_at=e.shared_at), "via_groups": e.groups}
            for e in entries]
    return JsonResponse({"object": "list", "data": data, "has_more": False})


@token_required(scope=CONVERSATIONS_READ)
def shared_detail(request: HttpRequest, conversation_id):
    if request.method != "GET":
        return method_not_allowed(request, "GET")
    try:
        conversation = sharing.conversation_get_shared(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        return error_response(BadRequest("No such conversation.", status=404, code="conversation_not_found"))
    data = shared_conversation_json(request, conversation)
    data["messages"] = [shared_message_json(request, m) for m in shared_thread(viewer=request.user,
                                                                             conversation=conversation)]
    return JsonResponse(data)
