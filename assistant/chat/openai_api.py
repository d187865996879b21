"""OpenAI-compatible endpoints, so other tools can use the assistant as a model.

    GET  /v1/models              the assistants, as models: the default one is `enterprise-assistant`,
                                 the others (defined by admins) go by the slug of their name
    GET  /v1/models/<id>
    POST /v1/chat/completions    streaming (server-sent events) and not

A completion is answered by the same pipeline as the chat page (answering.answer_events):
retrieval under the token owner's groups, the company prompt, verified citations. The answer
carries [n] markers in its text and a `citations` list (on the message, and on the last chunk
when streaming). Each request is kept as a conversation of the token's owner, so it shows in
their history. The client's system messages are not used (the assistant's own instructions
apply), nor are sampling parameters (the server's settings apply). An extra "libraries" field
(ids from GET /api/v1/libraries) makes the answer search only those libraries, as a pinned
conversation does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import transaction
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.utils.text import slugify

from assistant.accounts.api_auth import api_error, token_required
from assistant.accounts.scopes import ASK
from assistant.chat import services
from assistant.chat.answering import answer_events
from assistant.chat.api import (
    BadRequest, absolute_citation, answer_error_status, check_question_rate, error_response, json_body, library_ids,
    pins_refused,
)
from assistant.chat.assistants import assistants_available, conversation_assistant_set
from assistant.chat.library_pins import conversation_start_pinned
from assistant.chat.models import Conversation, Message
from assistant.rag.citations import MARKER
from connectors.request_input import RequestInvalid
from connectors.stage_timing import lap

MODEL_ID = "enterprise-assistant"
MODEL_CREATED = 1767225600  # 2026-01-01, a fixed date: the "model" is this service
OWNED_BY = "enterprise-assistant"
ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MAX_MESSAGES = 200


@dataclass(frozen=True)
class OfferedModel:
    id: str
    name: str
    description: str
    assistant_id: str | None  # None: the default assistant


def models_offered(*, user) -> list[OfferedModel]:
    """The default assistant as `enterprise-assistant`, then each other assistant `user` may
    use by the slug of its name (its UUID when the name gives no usable slug)."""
    offered = []
    for assistant in assistants_available(user=user):
        if assistant.is_default:
            offered.insert(0, OfferedModel(MODEL_ID, assistant.name, assistant.description, None))
            continue
        slug = slugify(assistant.name)
        model_id = slug if slug and slug != MODEL_ID else str(assistant.id)
        offered.append(OfferedModel(model_id, assistant.name, assistant.description, str(assistant.id)))
    if not offered or offered[0].id != MODEL_ID:
        offered.insert(0, OfferedModel(MODEL_ID, "Assistant", "", None))
    return offered


def model_resolve(model_id: str, *, user) -> OfferedModel:
    """The model offered to `user` named `model_id` (its id, or an assistant's UUID), or a 404 BadRequest."""
    for offered in models_offered(user=user):
        if model_id in (offered.id, offered.assistant_id):
            return offered
    raise BadRequest(
        f"The model '{model_id}' does not exist. Use '{MODEL_ID}' or another model that GET /v1/models lists.",
        status=404, code="model_not_found", param="model",
    )


def _model_json(offered: OfferedModel) -> dict:
    return {"id": offered.id, "object": "model", "created": MODEL_CREATED, "owned_by": OWNED_BY,
            "name": offered.name, "description": offered.description}


def _method_not_allowed(request: HttpRequest, allowed: str) -> JsonResponse:
    response = api_error(f"{request.method} is not allowed here; use {allowed}.", status=405)
    response["Allow"] = allowed
    return response


@token_required(scope=ASK)
def models(request: HttpRequest):
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    return JsonResponse({"object": "list", "data": [_model_json(m) for m in models_offered(user=request.user)]})


@token_required(scope=ASK)
def model_detail(request: HttpRequest, model_id: str):
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    try:
        return JsonResponse(_model_json(model_resolve(model_id, user=request.user)))
    except BadRequest as exc:
        return exc.response()


# --- request ------------------------------------------------------------------------------------


def _text_of(content, index: int) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") in ("image_url", "input_audio", "file"):
                raise BadRequest(
                    f"messages[{index}] has a '{part['type']}' part; this assistant reads text only.",
                    param=f"messages[{index}].content",
                )
            else:
                raise BadRequest(f"messages[{index}].content has a part that is not text.",
                                 param=f"messages[{index}].content")
        return "\n".join(texts)
    raise BadRequest(f"messages[{index}].content must be a string or a list of text parts.",
                     param=f"messages[{index}].content")


def parse_completion_request(body: dict) -> tuple[str, list[tuple[str, str]], str, bool]:
    """(model, earlier user/assistant turns, the question, stream) from a chat completions body."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(f"Say which model to use: \"model\": \"{MODEL_ID}\".", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list of {\"role\", \"content\"} objects.", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise BadRequest(f"Too many messages ({len(messages)}); the limit is {MAX_MESSAGES}.", param="messages")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false.", param="stream")
    n = body.get("n", 1)
    if n not in (None, 1):
        raise BadRequest("Only one choice is produced per request: 'n' must be 1.", param="n")
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(
                f"messages[{index}] must be an object with a 'role' of user, assistant or system.",
                param=f"messages[{index}].role",
            )
        text = _text_of(message.get("content"), index)
        if message["role"] in ("user", "assistant") and text.strip():
            turns.append((message["role"], text))
    last = messages[-1]
    if last.get("role") != "user" or not turns or turns[-1][0] != "user":
        raise BadRequest("The last message must be the user's question (role 'user', with text).",
                         param=f"messages[{len(messages) - 1}]")
    question = turns.pop()[1]
    return model, turns, question, stream


@transaction.atomic
def completion_conversation_start(
    *, user, turns: list[tuple[str, str]], question: str, assistant_id: str | None = None,
    library_ids: list[str] | None = None,
) -> tuple[Message, Message]:
    """A conversation of `user` (answered by the given assistant, else the default; searching only
    `library_ids` when given) holding the client's earlier turns, then the question and a pending answer."""
    if library_ids:
        try:
            conversation = conversation_start_pinned(user=user, library_ids=library_ids)
        except services.InvalidInput as exc:
            raise pins_refused(exc) from None
    else:
        conversation = services.conversation_create(user=user)
    if assistant_id:
        conversation_assistant_set(conversation=conversation, assistant_id=assistant_id)
    previous = None
    has_parent = any(f.name == "parent" for f in Message._meta.get_fields())
    for role, text in turns:
        extra = {"parent": previous} if has_parent else {}
        previous = Message.objects.create(
            conversation=conversation, role=role, content=text, status=Message.Status.COMPLETE, **extra
        )
    if previous is not None and hasattr(Conversation, "active_leaf"):
        conversation.active_leaf = previous
        conversation.save(update_fields=["active_leaf", "updated_at"])
    return services.first_question_submit(conversation=conversation, content=question)


# --- response -----------------------------------------------------------------------------------


_SPACED_MARKER = re.compile(r"([ \t]*)" + MARKER.pattern)


def text_with_valid_markers(content: str, citations: list[dict]) -> str:
    """The answer with only the [n] markers that a citation backs (others removed)."""
    valid = {c.get("n") for c in citations}

    def keep(match) -> str:
        numbers = [n for n in (int(p) for p in match.group(2).split(",")) if n in valid]
        return match.group(1) + "".join(f"[{n}]" for n in numbers) if numbers else ""

    return _SPACED_MARKER.sub(keep, content)


def absolute_citations(request: HttpRequest, citations: list[dict]) -> list[dict]:
    """The `done` event's citations (already re-checked against the caller's access) that the
    caller may see, as the JSON API shows them."""
    return [absolute_citation(request, c) for c in citations or [] if c.get("available")]


def _chunk(completion_id: str, created: int, model: str, delta: dict, finish_reason=None, **extra) -> str:
    data = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return f"data: {json.dumps(data)}\n\n"


def _error_body(data: dict) -> dict:
    status, code = answer_error_status(data)
    return {"message": data.get("message", "The answer failed."),
            "type": "server_error" if status >= 500 else "invalid_request_error", "param": None, "code": code}


@token_required(scope=ASK)
async def chat_completions(request: HttpRequest):
    if request.method != "POST":
        return _method_not_allowed(request, "POST")
    user = request.user
    try:
        body = json_body(request)
        model_id, turns, question_text, stream = parse_completion_request(body)
        model, question, answer = await sync_to_async(_start)(user, model_id, turns, question_text, library_ids(body))
    except RequestInvalid as exc:
        return error_response(exc)
    lap("conversation_create")

    completion_id = f"chatcmpl-{answer.id.hex}"
    created = int(time.time())
    conversation_id = str(answer.conversation_id)

    if stream:
        async def events():
            yield _chunk(completion_id, created, model.id, {"role": "assistant", "content": ""},
                         conversation_id=conversation_id)
            lap("first_write")
            async for name, data in answer_events(answer, user):
                if name == "token":
                    yield _chunk(completion_id, created, model.id, {"content": data["text"]})
                elif name == "done":
                    citations = absolute_citations(request, data.get("citations"))
                    yield _chunk(completion_id, created, model.id, {}, "stop", citations=citations,
                                 conversation_id=conversation_id)
                elif name == "error":
                    yield f"data: {json.dumps({'error': _error_body(data)})}\n\n"
                # `step` events (the agent's tool calls) have no place in OpenAI's chunks: skipped.
            yield "data: [DONE]\n\n"

        response = StreamingHttpResponse(events(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response

    error, done = None, {}
    async for name, data in answer_events(answer, user):
        if name == "error":
            error = data
        elif name == "done":
            done = data
    if error is not None:
        status, _ = answer_error_status(error)
        return JsonResponse({"error": _error_body(error)}, status=status)
    citations = absolute_citations(request, done.get("citations"))
    return JsonResponse({
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model.id,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text_with_valid_markers(answer.content, citations),
                        "citations": citations},
            "finish_reason": "stop",
        }],
        "citations": citations,
        "conversation_id": conversation_id,
    })


def _start(user, model_id, turns, question_text, pins) -> tuple[OfferedModel, Message, Message]:
    # The default assistant is open to everyone: answering it needs no list of the others.
    model = OfferedModel(MODEL_ID, "", "", None) if model_id == MODEL_ID else model_resolve(model_id, user=user)
    check_question_rate(user)
    try:
        question, answer = completion_conversation_start(
            user=user, turns=turns, question=question_text, assistant_id=model.assistant_id, library_ids=pins
        )
    except services.InvalidInput as exc:
        raise BadRequest(str(exc), param="messages") from None
    return model, question, answer
