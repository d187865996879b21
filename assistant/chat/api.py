"""The JSON API for other tools, authenticated by personal API token (docs/api.md).

    GET    /api/v1/conversations                   the caller's conversations, newest first
    POST   /api/v1/conversations                   start one  {"title": optional, "libraries": optional ids}
    GET    /api/v1/conversations/<id>              one, with its messages
    DELETE /api/v1/conversations/<id>              delete it
    GET    /api/v1/conversations/<id>/messages     its messages, with citations
    POST   /api/v1/conversations/<id>/messages     ask  {"content": "...", "stream": false}
                                                   JSON answer, or server-sent events with "stream": true

Every request acts as the token's owner: retrieval uses the owner's groups, and another
user's conversation is a 404. Errors: {"error": {"message", "type", "param", "code"}}.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from assistant.accounts import ratelimit
from assistant.accounts.api_auth import api_error, token_required
from assistant.accounts.scopes import ASK, CONVERSATIONS_READ
from assistant.chat import selectors, services
from assistant.chat.answering import answer_events
from assistant.chat.library_pins import PINS_MAX, conversation_libraries_shown, conversation_start_pinned
from assistant.chat.models import Conversation, Message
from connectors import request_input
from connectors.request_input import RequestInvalid

DEFAULT_PAGE = 20
MAX_PAGE = 100
LIBRARIES_PARAM = "libraries"


class BadRequest(RequestInvalid):
    def __init__(self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None,
                 retry_after: int | None = None):
        super().__init__(message, param=param, status=status)
        self.code = code
        self.retry_after = retry_after

    def response(self) -> JsonResponse:
        return error_response(self)


def error_response(exc: RequestInvalid) -> JsonResponse:
    """Any refused input (BadRequest, or request_input's RequestInvalid) in the API's error shape."""
    response = api_error(str(exc), status=exc.status, param=exc.param, code=exc.code)
    if getattr(exc, "retry_after", None):
        response["Retry-After"] = str(exc.retry_after)
    return response


def check_question_rate(user) -> None:
    """Count one question of `user` against CHAT_RATE_LIMIT (shared with the chat page); 429 past it."""
    verdict = ratelimit.chat_question_allowed(user=user)
    if not verdict.allowed:
        raise BadRequest(
            f"You are asking questions faster than allowed. Wait {ratelimit.wait_phrase(verdict.retry_after)} "
            "and ask again.",
            status=429, code="rate_limit_exceeded", retry_after=verdict.retry_after,
        )


def json_body(request: HttpRequest) -> dict:
    """The request's JSON object (checked by request_input: UTF-8, no NUL, sane sizes), or RequestInvalid."""
    return request_input.json_object(request)


def library_ids(body: dict) -> list[str] | None:
    """The "libraries" of a request body (ids of libraries to search only): None when absent;
    whether the caller may read each is checked by assistant.chat.library_pins."""
    if body.get(LIBRARIES_PARAM) is None:
        return None
    return request_input.text_list(body, LIBRARIES_PARAM, max_items=PINS_MAX, max_chars=64)


def pins_refused(exc: services.InvalidInput) -> BadRequest:
    """A pin the caller may not make (an id that is unknown or not shared with them: one message)."""
    return BadRequest(str(exc), param=LIBRARIES_PARAM)


def _int_param(request: HttpRequest, name: str, default: int, *, minimum: int, maximum: int) -> int:
    return request_input.whole_number(request.GET, name, default=default, minimum=minimum, maximum=maximum)


# --- representations -------------------------------------------------------------------------


def iso_time(value) -> str | None:
    return value.isoformat() if value else None


def conversation_json(request: HttpRequest, conversation: Conversation) -> dict:
    return {
        "id": str(conversation.id),
        "object": "conversation",
        "title": conversation.title,
        "created_at": iso_time(conversation.created_at),
        "updated_at": iso_time(conversation.updated_at),
        "url": request.build_absolute_uri(conversation.get_absolute_url()),
    }


def pinned_json(conversation: Conversation, user) -> list[dict]:
    """The libraries the conversation searches only (those the user may still read)."""
    return [{"id": str(lib.id), "name": lib.name}
            for lib in conversation_libraries_shown(conversation=conversation, user=user)]


def visible_citations(request: HttpRequest, user, messages: list[Message]) -> dict:
    """Each message's citations, keeping only sources the user may see now (selectors.citations_shown).

    An ACL change takes effect on answers already given too: a document the user lost
    access to disappears from the citations (the user's own attachments stay while they exist).
    """
    shown = selectors.citations_shown(user=user, messages=messages)
    return {m.id: [absolute_citation(request, c) for c in shown[m.id] if c.get("available")] for m in messages}


def absolute_citation(request: HttpRequest, citation: dict) -> dict:
    """A citation the caller may see, for an API client: absolute link, no bookkeeping flag."""
    c = {k: v for k, v in citation.items() if k != "available"}
    if c.get("document_url"):
        c["document_url"] = request.build_absolute_uri(c["document_url"])
    return c


def message_json(message: Message, citations: list[dict]) -> dict:
    return {
        "id": str(message.id),
        "object": "message",
        "conversation_id": str(message.conversation_id),
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error or None,
        "citations": citations if message.role == Message.Role.ASSISTANT else [],
        "model": message.model or None,
        "created_at": iso_time(message.created_at),
    }


def messages_json(request: HttpRequest, user, messages: list[Message]) -> list[dict]:
    shown = visible_citations(request, user, messages)
    extras = selectors.steps_and_sources_shown(user=user, messages=messages)
    return [{**message_json(m, shown[m.id]), **absolute_extras(request, extras[m.id])} for m in messages]


def absolute_extras(request: HttpRequest, extras: dict) -> dict:
    """An answer's steps and sources (selectors.steps_and_sources_shown) with absolute links."""

    def linked(source: dict) -> dict:
        return {**source, "url": request.build_absolute_uri(source["url"])}

    return {
        "steps": [{**step, "sources": [linked(s) for s in step["sources"]]} for step in extras["steps"]],
        "sources": [linked(s) for s in extras["sources"]],
    }


def _conversation_messages(conversation: Conversation) -> list[Message]:
    """The messages of the branch shown (edited questions and regenerated answers branch off)."""
    thread_of = getattr(selectors, "thread_of", None)
    if thread_of is not None:
        return thread_of(conversation=conversation)
    return list(conversation.messages.order_by("created_at"))


def own_conversation(user, conversation_id) -> Conversation:
    try:
        return selectors.conversation_get(user=user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise BadRequest("No such conversation.", status=404, code="conversation_not_found") from None


# --- views --------------------------------------------------------------------------------------


@token_required(scope={"GET": CONVERSATIONS_READ, "POST": ASK})
def conversations(request: HttpRequest):
    try:
        if request.method == "GET":
            limit = _int_param(request, "limit", DEFAULT_PAGE, minimum=1, maximum=MAX_PAGE)
            offset = _int_param(request, "offset", 0, minimum=0, maximum=10**9)
            recent = selectors.conversations_of(user=request.user).order_by("-updated_at")
            page = list(recent[offset : offset + limit + 1])
            return JsonResponse({
                "object": "list",
                "data": [conversation_json(request, c) for c in page[:limit]],
                "has_more": len(page) > limit,
            })
        if request.method == "POST":
            body = json_body(request)
            title = request_input.text(body, "title", default=None, max_chars=1000)
            pins = library_ids(body)
            if pins:
                try:
                    conversation = conversation_start_pinned(user=request.user, library_ids=pins)
                except services.InvalidInput as exc:
                    raise pins_refused(exc) from None
            else:
                conversation = services.conversation_create(user=request.user)
            if title and title.strip():
                services.conversation_rename(conversation=conversation, title=title)
            data = conversation_json(request, conversation)
            data["libraries"] = pinned_json(conversation, request.user)
            return JsonResponse(data, status=201)
    except RequestInvalid as exc:
        return error_response(exc)
    except services.InvalidInput as exc:
        return api_error(str(exc), status=400)
    return method_not_allowed(request, "GET, POST")


@token_required(scope={"GET": CONVERSATIONS_READ, "DELETE": ASK})
def conversation_detail(request: HttpRequest, conversation_id):
    try:
        conversation = own_conversation(request.user, conversation_id)
    except BadRequest as exc:
        return exc.response()
    if request.method == "GET":
        data = conversation_json(request, conversation)
        data["libraries"] = pinned_json(conversation, request.user)
        data["messages"] = messages_json(request, request.user, _conversation_messages(conversation))
        return JsonResponse(data)
    if request.method == "DELETE":
        services.conversation_delete(conversation=conversation)
        return HttpResponse(status=204)
    return method_not_allowed(request, "GET, DELETE")


def method_not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    response = api_error(f"{request.method} is not allowed here; use {allowed}.", status=405)
    response["Allow"] = allowed
    return response


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


ERROR_STATUS = {  # kinds of assistant.chat.failures.error_event
    "context_too_long": (400, "context_length_exceeded"),
    "unreachable": (503, "model_unavailable"),
    "busy": (503, "model_overloaded"),
    "broken": (502, "model_error"),
    "refused": (502, "model_error"),
}


def answer_error_status(data: dict) -> tuple[int, str]:
    """HTTP status and code for an `error` event of answer_events."""
    if data.get("kind") in ERROR_STATUS:
        return ERROR_STATUS[data["kind"]]
    message = str(data.get("message", "")).lower()
    if "context window" in message or "too long" in message:
        return 400, "context_length_exceeded"
    if data.get("retryable"):
        return 503, "model_unavailable"
    return 502, "model_error"


@sync_to_async
def _submit(user, conversation_id, body: dict):
    conversation = own_conversation(user, conversation_id)
    content = body.get("content")
    if not isinstance(content, str):
        raise BadRequest("Send the question as text in 'content'.", param="content")
    attachment_ids = request_input.text_list(body, "attachment_ids")
    check_question_rate(user)
    try:
        return services.question_submit(conversation=conversation, content=content, attachment_ids=attachment_ids)
    except services.InvalidInput as exc:
        raise BadRequest(str(exc), param="content") from None


@sync_to_async
def _messages_payload(request, user, conversation_id) -> list[dict]:
    return messages_json(request, user, _conversation_messages(own_conversation(user, conversation_id)))


@sync_to_async
def _messages_by_id(request, user, message_ids) -> dict[str, dict]:
    """The user's messages with these ids (JSON), whatever became of their branch meanwhile."""
    messages = list(Message.objects.filter(id__in=message_ids, conversation__user=user).order_by("created_at"))
    return {m["id"]: m for m in messages_json(request, user, messages)}


@token_required(scope={"GET": CONVERSATIONS_READ, "POST": ASK})
async def conversation_messages(request: HttpRequest, conversation_id):
    user = request.user
    try:
        if request.method == "GET":
            data = await _messages_payload(request, user, conversation_id)
            return JsonResponse({"object": "list", "data": data, "has_more": False})
        if request.method != "POST":
            return method_not_allowed(request, "GET, POST")
        body = json_body(request)
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest("'stream' must be true or false.", param="stream")
        question, answer = await _submit(user, conversation_id, body)
    except RequestInvalid as exc:
        return error_response(exc)

    if stream:
        async def events():
            yield _sse("created", {"question_id": str(question.id), "answer_id": str(answer.id),
                                   "conversation_id": str(answer.conversation_id)})
            async for name, data in answer_events(answer, user):
                if name == "token":
                    yield _sse("token", {"text": data["text"]})
                elif name == "done":
                    stored = await _messages_by_id(request, user, [answer.id])
                    yield _sse("done", {"answer": stored.get(str(answer.id))})
                elif name in ("error", "notice", "step"):  # a step: a tool call starting or ending
                    yield _sse(name, data)

        response = StreamingHttpResponse(events(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response

    error = None
    async for name, data in answer_events(answer, user):
        if name == "error":
            error = data
    by_id = await _messages_by_id(request, user, [question.id, answer.id])
    payload = {"question": by_id.get(str(question.id)), "answer": by_id.get(str(answer.id))}
    if error is not None:
        status, code = answer_error_status(error)
        response = api_error(error["message"], status=status, code=code,
                             error_type="server_error" if status >= 500 else None)
        body = json.loads(response.content)
        body.update(payload)
        return JsonResponse(body, status=status)
    return JsonResponse(payload, status=201)
