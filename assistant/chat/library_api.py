"""Libraries over the JSON API (docs/api.md): which the token's owner may read, and pinning a
conversation to some of them ("search only these"), as the /libraries/ pages and the chat do.

    GET /api/v1/libraries                            the libraries the caller may read
    GET /api/v1/conversations/<id>/libraries         the conversation's pins the caller may still read
    PUT /api/v1/conversations/<id>/libraries         pin exactly these  {"libraries": ["<id>", ...]}

A library the caller may not read is never named: pinning it is the same 400 as an unknown id.
Starting a pinned conversation is `POST /api/v1/conversations` with "libraries", and a
completion restricted to libraries is `POST /v1/chat/completions` with "libraries".
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from assistant.accounts.api_auth import token_required
from assistant.accounts.scopes import ASK, CONVERSATIONS_READ
from assistant.chat.api import (
    LIBRARIES_PARAM, BadRequest, error_response, iso_time, json_body, library_ids, method_not_allowed, own_conversation,
    pins_refused,
)
from assistant.chat.library_pins import conversation_libraries_set, conversation_libraries_shown
from assistant.chat.services import InvalidInput
from connectors.library_selectors import libraries_visible, library_sharing
from connectors.models import Connector
from connectors.request_input import RequestInvalid

def library_json(request: HttpRequest, library: Connector, *, user) -> dict:
    owner = library.owner
    data = {
        "id": str(library.id),
        "object": "library",
        "name": library.name,
        "description": library.description,
        "owner": owner.get_username(),
        "owned": owner.pk == user.pk,
        "documents": getattr(library, "document_count", None),
        "created_at": iso_time(library.created_at),
        "updated_at": iso_time(library.updated_at),
        "url": request.build_absolute_uri(reverse("libraries:detail", args=[library.id])),
    }
    if data["owned"]:  # who else reads it is the owner's to know, as on the library's page
        groups, users = library_sharing(library)
        data["shared_with"] = {"groups": groups, "users": users}
    return data


@token_required(scope=ASK)
def libraries(request: HttpRequest):
    if request.method != "GET":
        return method_not_allowed(request, "GET")
    found = libraries_visible(user=request.user)
    return JsonResponse({"object": "list", "data": [library_json(request, lib, user=request.user) for lib in found],
                         "has_more": False})


@token_required(scope={"GET": CONVERSATIONS_READ, "PUT": ASK})
def conversation_libraries(request: HttpRequest, conversation_id):
    try:
        conversation = own_conversation(request.user, conversation_id)
        if request.method == "PUT":
            ids = library_ids(json_body(request))
            if ids is None:
                raise BadRequest("Send the libraries to pin as a list of ids in 'libraries' ([] unpins).",
                                 param=LIBRARIES_PARAM)
            try:
                conversation_libraries_set(conversation=conversation, library_ids=ids)
            except InvalidInput as exc:
                raise pins_refused(exc) from None
        elif request.method != "GET":
            return method_not_allowed(request, "GET, PUT")
    except RequestInvalid as exc:
        return error_response(exc)
    pinned = conversation_libraries_shown(conversation=conversation, user=request.user)
    return JsonResponse({"object": "list", "data": [library_json(request, lib, user=request.user) for lib in pinned],
                         "has_more": False})

