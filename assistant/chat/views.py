"""Chat pages and the JSON/SSE endpoints behind them.

Another user's conversation or message is a 404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from assistant.accounts import ratelimit
from assistant.chat import attachments, selectors, services
from assistant.chat.assistants import assistant_get_available, conversation_assistant_set
from assistant.chat.answer_relay import valid_event_id
from assistant.chat.answer_worker import answer_follow
from assistant.chat.answering import answer_events
from assistant.chat.models import Assistant, Attachment, Conversation, Message
from assistant.chat.sharing import shares_reaching
from connectors.models import Document
from connectors.request_input import (
    FORM_TYPES, answers_bad_input, body_fields, check_text, text, text_list, whole_number,
)
from connectors.selectors import document_get_visible
from connectors.stage_timing import lap

UNDO_SECONDS = 8  # how long the "Undo" toast stays after a delete (the purge waits much longer)


def own_conversation(request: HttpRequest, conversation_id) -> Conversation:
    try:
        return selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404(_("No such conversation.")) from None


def _rate_limited(request: HttpRequest):
    """A 429 response when the user asks faster than CHAT_RATE_LIMIT allows (the question counts)."""
    verdict = ratelimit.chat_question_allowed(user=request.user)
    if verdict.allowed:
        return None
    return ratelimit.too_many_requests(
        request,
        _("You are asking questions faster than allowed. Wait %(wait)s and ask again.")
        % {"wait": ratelimit.wait_phrase(verdict.retry_after)},
        verdict.retry_after,
    )


MAX_CHUNK_ID = 2**63 - 1  # a bigint: larger ids are no chunk, not a database error
TITLE_INPUT_CHARS = 1000  # longer titles are cut to 200 by the service; beyond this, refused


@login_required
@require_GET
def home(request: HttpRequest):
    return render(
        request,
        "chat/chat.html",
        {
            "conversations": selectors.conversations_of(user=request.user),
            "conversation_groups": selectors.conversations_grouped(user=request.user),
            "conversation": None,
            "chat_messages": [],
            "attach_accept": attachments.accept_attribute(),
        },
    )


@login_required
@require_GET
def conversation_detail(request: HttpRequest, conversation_id):
    try:
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        # A colleague's link to a conversation shared with the reader: its read-only view; else 404.
        if not shares_reaching(user=request.user).filter(conversation_id=conversation_id).exists():
            raise Http404(_("No such conversation.")) from None
        return redirect("chat:shared_conversation", conversation_id=conversation_id)
    return render(
        request,
        "chat/chat.html",
        {
            "conversations": selectors.conversations_of(user=request.user),
            "conversation_groups": selectors.conversations_grouped(user=request.user),
            "conversation": conversation,
            "chat_messages": selectors.messages_with_citations_shown(
                user=request.user, messages=selectors.thread_of(conversation=conversation)
            ),
            "pending_attachments": list(conversation.attachments.filter(message__isnull=True)),
            "attach_accept": attachments.accept_attribute(),
        },
    )


@login_required
@require_POST
@answers_bad_input
def conversation_rename(request: HttpRequest, conversation_id):
    conversation = own_conversation(request, conversation_id)
    title = text(body_fields(request), "title", max_chars=TITLE_INPUT_CHARS)
    try:
        services.conversation_rename(conversation=conversation, title=title)
    except services.InvalidInput as exc:
        if request.content_type == "application/json":
            return JsonResponse({"error": str(exc)}, status=400)
    if request.content_type == "application/json":
        return JsonResponse({"id": str(conversation.id), "title": conversation.title})
    return redirect(conversation)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id):
    conversation = own_conversation(request, conversation_id)
    services.conversation_delete(conversation=conversation)
    if request.content_type == "application/json":
        return JsonResponse(
            {
                "deleted": True,
                "undo_url": reverse("chat:restore", args=[conversation.id]),
                "undo_seconds": UNDO_SECONDS,
            }
        )
    return redirect("chat:home")


@login_required
@require_POST
def conversation_restore(request: HttpRequest, conversation_id):
    """Undo a delete, while the conversation has not been purged yet."""
    try:
        conversation = selectors.conversation_get_deleted(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404(_("No such conversation, or it was deleted for good.")) from None
    services.conversation_restore(conversation=conversation)
    if request.content_type == "application/json":
        return JsonResponse(_conversation_json(conversation))
    return redirect(conversation)


@login_required
@require_POST
@answers_bad_input
def conversation_pin(request: HttpRequest, conversation_id):
    conversation = own_conversation(request, conversation_id)
    body = body_fields(request)
    if request.content_type in FORM_TYPES:
        pinned = text(body, "pinned", max_chars=10) in ("1", "true", "on")
    else:
        pinned = body.get("pinned", False)
    if not isinstance(pinned, bool):
        return JsonResponse({"error": _("Say whether to pin: {\"pinned\": true} or false.")}, status=400)
    services.conversation_pin(conversation=conversation, pinned=pinned)
    if request.content_type == "application/json":
        return JsonResponse(_conversation_json(conversation))
    return redirect(conversation)


def _conversation_json(conversation: Conversation, snippet: str = "") -> dict:
    return {
        "id": str(conversation.id),
        "title": conversation.title,
        "url": conversation.get_absolute_url(),
        "pinned": conversation.pinned_at is not None,
        "updated_at": conversation.updated_at.isoformat(),
        "snippet": snippet,
    }


@login_required
@require_GET
@answers_bad_input
def api_conversation_search(request: HttpRequest):
    """The user's conversations whose title or messages contain `q` (as the user types)."""
    query = text(request.GET, "q", max_chars=1000)
    hits = selectors.conversations_search(user=request.user, query=query)
    return JsonResponse(
        {"query": query, "results": [_conversation_json(h.conversation, h.snippet) for h in hits]}
    )


@login_required
@require_POST
@answers_bad_input
def api_conversation_create(request: HttpRequest):
    assistant_id = text(body_fields(request), "assistant_id", default=None, max_chars=100)
    if assistant_id:  # the assistant picked in the composer before the first question
        try:
            assistant_get_available(user=request.user, assistant_id=assistant_id)
        except (Assistant.DoesNotExist, ValueError, ValidationError):
            return JsonResponse(
                {"error": _("That assistant is not available; pick another one from the list.")}, status=400
            )
    conversation = services.conversation_create(user=request.user)
    if assistant_id:
        conversation_assistant_set(conversation=conversation, assistant_id=assistant_id)
    return JsonResponse(
        {"id": str(conversation.id), "url": conversation.get_absolute_url(), "title": conversation.title}, status=201
    )


@login_required
@require_POST
@answers_bad_input
def api_question_submit(request: HttpRequest, conversation_id):
    conversation = own_conversation(request, conversation_id)
    body = body_fields(request)
    content = body.get("content", "")
    if not isinstance(content, str):
        return JsonResponse({"error": _("The question must be text.")}, status=400)
    content = text(body, "content")
    attachment_ids = text_list(body, "attachment_ids")
    if (refused := _rate_limited(request)) is not None:
        return refused
    try:
        question, answer = services.question_submit(
            conversation=conversation, content=content, attachment_ids=attachment_ids
        )
    except services.InvalidInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {
            "user_message": {
                "id": str(question.id),
                "content": question.content,
                "attachments": [_attachment_json(a) for a in question.attachments.all()],
            },
            "assistant_message": {"id": str(answer.id)},
            "stream_url": f"/chat/api/messages/{answer.id}/stream/",
            "title": conversation.title,
        },
        status=201,
    )


def _own_message(request: HttpRequest, message_id) -> Message:
    try:
        return selectors.message_get(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404(_("No such message.")) from None


def _versions_json(message: Message) -> dict:
    version = selectors.versions_of(message=message)
    return {"index": version.index, "count": version.count, "previous_id": version.previous_id,
            "next_id": version.next_id}


@login_required
@require_POST
def api_answer_regenerate(request: HttpRequest, message_id):
    """A new answer to the same question; the earlier one stays as another version."""
    message = _own_message(request, message_id)
    if (refused := _rate_limited(request)) is not None:
        return refused
    try:
        answer = services.answer_regenerate(message=message)
    except services.InvalidInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {
            "assistant_message": {"id": str(answer.id), "versions": _versions_json(answer)},
            "stream_url": reverse("chat:api_answer_stream", args=[answer.id]),
        },
        status=201,
    )


@login_required
@require_POST
@answers_bad_input
def api_question_edit(request: HttpRequest, message_id):
    """Ask an edited question: a new branch; the old question and its answers stay reachable."""
    message = _own_message(request, message_id)
    content = text(body_fields(request), "content")
    if (refused := _rate_limited(request)) is not None:
        return refused
    try:
        question, answer = services.question_edit(message=message, content=content)
    except services.InvalidInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {
            "user_message": {"id": str(question.id), "content": question.content, "attachments": [],
                             "versions": _versions_json(question)},
            "assistant_message": {"id": str(answer.id)},
            "stream_url": reverse("chat:api_answer_stream", args=[answer.id]),
            "title": message.conversation.title,
        },
        status=201,
    )


@login_required
@require_POST
def api_message_activate(request: HttpRequest, message_id):
    """Show another version (the branch through this message, to its newest end)."""
    message = _own_message(request, message_id)
    if message.conversation.messages.filter(status__in=[Message.Status.PENDING, Message.Status.STREAMING]).exists():
        return JsonResponse({"error": _("Wait for the current answer to finish, or stop it, first.")}, status=400)
    leaf = services.message_activate(message=message)
    return JsonResponse({"active_leaf": str(leaf.id), "url": message.conversation.get_absolute_url()})


@login_required
@require_POST
def api_answer_stop(request: HttpRequest, message_id):
    try:
        message = selectors.message_get(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404(_("No such message.")) from None
    return JsonResponse({"stopped": services.answer_stop(message=message)})


def _attachment_json(attachment: Attachment) -> dict:
    return {
        "id": str(attachment.id),
        "name": attachment.name,
        "size": attachment.size,
        "media_type": attachment.media_type,
        "url": attachment.get_absolute_url(),
    }


def _own_attachment(request: HttpRequest, attachment_id) -> Attachment:
    try:
        return attachments.attachment_get(user=request.user, attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        raise Http404(_("No such file.")) from None


@login_required
@require_POST
@answers_bad_input
def api_attachment_add(request: HttpRequest, conversation_id):
    """Attach one file (multipart field `file`) to the conversation, for the next question."""
    conversation = own_conversation(request, conversation_id)
    # Both before the body is parsed: a refused upload costs nothing more.
    verdict = attachments.attachment_upload_allowed(user=request.user)
    if not verdict.allowed:
        message = _("You are attaching files faster than allowed. Wait %(wait)s and try again.") % {
            "wait": ratelimit.wait_phrase(verdict.retry_after)
        }
        response = JsonResponse({"error": message, "retry_after": verdict.retry_after}, status=429)
        response["Retry-After"] = str(verdict.retry_after)
        return response
    too_large = attachments.request_too_large(request.META.get("CONTENT_LENGTH"))
    if too_large:
        return JsonResponse({"error": too_large}, status=400)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": _("Choose a file to attach.")}, status=400)
    check_text(upload.name or "", "file", max_chars=1000)  # the name is stored and shown
    try:
        attachment = attachments.attachment_add(conversation=conversation, upload=upload)
    except services.InvalidInput as exc:
        return JsonResponse({"error": str(exc), "name": upload.name}, status=400)
    return JsonResponse(_attachment_json(attachment), status=201)


@login_required
@require_POST
def api_attachment_remove(request: HttpRequest, attachment_id):
    attachments.attachment_remove(attachment=_own_attachment(request, attachment_id))
    return JsonResponse({"deleted": True})


@login_required
@require_GET
@answers_bad_input
def attachment_detail(request: HttpRequest, attachment_id):
    """An attached file's text with the cited passage marked; only for the conversation's owner."""
    attachment = _own_attachment(request, attachment_id)
    start = end = 0
    chunk_id = whole_number(request.GET, "chunk", default=None, minimum=0, maximum=MAX_CHUNK_ID)
    if chunk_id is not None:
        chunk = attachment.chunks.filter(id=chunk_id).values("start_char", "end_char").first()
        if chunk:
            start, end = chunk["start_char"], chunk["end_char"]
    text = attachment.text
    shown = {
        "title": attachment.name,
        "connector": {"name": attachments.CONNECTOR_LABEL},
        "location": attachment.conversation.title,
        "media_type": attachment.media_type,
        "url": "",
    }
    return render(
        request,
        "chat/document.html",
        {"document": shown, "location": shown["location"], "before": text[:start], "passage": text[start:end],
         "after": text[end:]},
    )


def _sse(event: str, data: dict, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


@login_required
@require_GET
async def api_answer_stream(request: HttpRequest, message_id):
    """Server-sent events: the answer's tokens as the model writes them."""
    lap("middleware")  # the session's user was loaded there (login_required)
    user = await request.auser()
    try:
        message = await sync_to_async(selectors.message_get)(user=user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404(_("No such message.")) from None
    lap("message_load")

    language = translation.get_language() or settings.LANGUAGE_CODE
    if settings.ANSWER_RUNNER == "worker":
        # Written by a worker; this request follows it from the start or from the client's last event.
        last_id = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
        if not valid_event_id(last_id):
            return JsonResponse({"error": _("Last-Event-ID must be an event id this stream sent.")}, status=400)

        async def events():
            with translation.override(language):
                async for event_id, name, data in answer_follow(message, user, last_id=last_id, language=language):
                    yield _sse(name, data, event_id)
    else:
        async def events():
            # The stream outlives the middleware that chose the language: keep it for notices and errors.
            with translation.override(language):
                async for name, data in answer_events(
                    message, user, suggest_title=True, notices=True, language=language
                ):
                    yield _sse(name, data)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # let a reverse proxy pass tokens through at once
    return response


@login_required
@require_GET
@answers_bad_input
def document_detail(request: HttpRequest, document_id):
    """A source document, with the cited passage marked; only for readers its ACL admits."""
    try:
        document = document_get_visible(user=request.user, document_id=document_id)
    except Document.DoesNotExist:
        raise Http404(_("No such document.")) from None
    start = end = 0
    chunk_id = whole_number(request.GET, "chunk", default=None, minimum=0, maximum=MAX_CHUNK_ID)
    if chunk_id is not None:
        chunk = document.chunks.filter(id=chunk_id).values("start_char", "end_char").first()
        if chunk:
            start, end = chunk["start_char"], chunk["end_char"]
    text = document.text
    location = selectors.location_shown(
        user=request.user, location=document.location, connector_kind=document.connector.kind
    )
    return render(
        request,
        "chat/document.html",
        {"document": document, "location": location, "before": text[:start], "passage": text[start:end],
         "after": text[end:]},
    )
