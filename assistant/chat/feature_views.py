"""Views for assistants, feedback, memory and retrying a failed answer.

Another user's message or memory is a 404. The feedback list and its CSV export are for
staff only (others get a 404, see connectors.staff.staff_required); every export is recorded.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from assistant.chat import feedback as feedback_service
from assistant.chat import memory as memory_service
from assistant.chat import selectors
from assistant.chat.assistants import conversation_assistant_set
from assistant.chat.failures import answer_retry
from assistant.chat.models import Conversation, Feedback, Memory, Message
from assistant.chat.services import InvalidInput
from connectors.request_input import RequestInvalid, answers_bad_input, body_fields, boolean, text
from connectors.staff import staff_required


def _wants_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json" or "application/json" in request.headers.get("Accept", "")


def _own_message(request: HttpRequest, message_id) -> Message:
    try:
        return selectors.message_get(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404("No such message.") from None


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = text(request.POST, "next", max_chars=2000)
    # a path on this site only: redirect() would take any other word for a view name to reverse
    allowed = {request.get_host()}
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts=allowed, require_https=False):
        return target
    return fallback


# -------------------------------------------------------------- assistants


@login_required
@require_POST
@answers_bad_input
def api_conversation_assistant(request: HttpRequest, conversation_id):
    """Pick the assistant that answers this conversation from now on."""
    try:
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None
    try:
        assistant = conversation_assistant_set(
            conversation=conversation, assistant_id=text(body_fields(request), "assistant_id", max_chars=100)
        )
    except InvalidInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"id": str(assistant.id), "name": assistant.name, "description": assistant.description})


# ---------------------------------------------------------------- retrying


@login_required
@require_POST
def api_answer_retry(request: HttpRequest, message_id):
    """Ask the same question again in place of an answer that failed; the stream URL follows."""
    message = _own_message(request, message_id)
    try:
        answer_retry(message=message)
    except InvalidInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(
        {"id": str(message.id), "stream_url": reverse("chat:api_answer_stream", args=[message.id])}
    )


# ---------------------------------------------------------------- feedback


@login_required
@require_POST
@answers_bad_input
def api_message_feedback(request: HttpRequest, message_id):
    """Rate an answer: {"rating": "up"|"down", "comment": "..."}; {"rating": ""} withdraws it."""
    message = _own_message(request, message_id)
    body = body_fields(request)
    rating = text(body, "rating", allow_none=True, max_chars=10)
    comment = text(body, "comment", allow_none=True) or ""
    if rating in ("", None):
        feedback_service.feedback_clear(message=message, user=request.user)
        return JsonResponse({"rating": "", "comment": ""})
    try:
        feedback = feedback_service.feedback_set(
            message=message, user=request.user, rating=rating, comment=comment
        )
    except InvalidInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"rating": feedback.rating, "comment": feedback.comment})


def _feedback_filters(request: HttpRequest):
    try:
        for name in ("rating", "from", "to", "page"):
            text(request.GET, name, max_chars=100)
        return feedback_service.FeedbackFilters.parse(request.GET), ""
    except (InvalidInput, RequestInvalid) as exc:
        return feedback_service.FeedbackFilters(), str(exc)


@staff_required
@require_GET
def feedback_list(request: HttpRequest):
    """Staff: every rating, newest first, filterable by rating and date, with the CSV export."""
    filters, error = _feedback_filters(request)
    page = Paginator(feedback_service.feedback_list(filters=filters), 50).get_page(
        request.GET.get("page") if not error else 1
    )
    query = {k: v for k, v in filters.as_dict().items() if v}
    return render(
        request,
        "chat/feedback_list.html",
        {
            "page": page,
            "filters": filters.as_dict(),
            "filter_error": error,
            "query": urlencode(query),
            "ratings": Feedback.Rating.choices,
            "up_count": feedback_service.feedback_list(filters=filters).filter(rating="up").count(),
            "down_count": feedback_service.feedback_list(filters=filters).filter(rating="down").count(),
        },
        status=400 if error else 200,
    )


@staff_required
@require_GET
def feedback_export(request: HttpRequest):
    """Staff: the filtered feedback as CSV (question, answer, sources, rating, comment, user, date)."""
    filters, error = _feedback_filters(request)
    if error:
        return JsonResponse({"error": error}, status=400)
    queryset = feedback_service.feedback_list(filters=filters)
    feedback_service.feedback_export_record(user=request.user, filters=filters.as_dict(), row_count=queryset.count())
    response = StreamingHttpResponse(
        feedback_service.feedback_csv_rows(queryset), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="feedback-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------ memory


@login_required
@require_GET
def memory_list(request: HttpRequest):
    return render(
        request,
        "chat/memories.html",
        {
            "memories": memory_service.memories_of(user=request.user),
            "memory_enabled": memory_service.memory_enabled(user=request.user),
            "max_chars": memory_service.MAX_MEMORY_CHARS,
        },
    )


@login_required
@require_POST
@answers_bad_input
def memory_toggle(request: HttpRequest):
    """Turn memory on or off: form field or JSON `enabled` ("true"/"false")."""
    enabled = boolean(body_fields(request), "enabled")
    next_url = _safe_next(request, reverse("chat:memories"))
    memory_service.memory_enable_set(user=request.user, enabled=enabled)
    if _wants_json(request):
        return JsonResponse({"enabled": enabled})
    messages.success(request, _("Memory is on.") if enabled else _("Memory is off."))
    return redirect(next_url)


@login_required
@require_POST
@answers_bad_input
def memory_add(request: HttpRequest):
    try:
        memory = memory_service.memory_add(
            user=request.user, text=text(body_fields(request), "text"), origin=Memory.Origin.MANUAL
        )
    except InvalidInput as exc:
        if _wants_json(request):
            return JsonResponse({"error": str(exc)}, status=400)
        messages.error(request, str(exc))
        return redirect("chat:memories")
    if _wants_json(request):
        return JsonResponse({"id": str(memory.id), "text": memory.text}, status=201)
    return redirect("chat:memories")


def _own_memory(request: HttpRequest, memory_id) -> Memory:
    try:
        return memory_service.memory_get(user=request.user, memory_id=memory_id)
    except Memory.DoesNotExist:
        raise Http404("No such memory.") from None


@login_required
@require_POST
@answers_bad_input
def memory_edit(request: HttpRequest, memory_id):
    memory = _own_memory(request, memory_id)
    try:
        memory_service.memory_update(memory=memory, text=text(body_fields(request), "text"))
    except InvalidInput as exc:
        if _wants_json(request):
            return JsonResponse({"error": str(exc)}, status=400)
        messages.error(request, str(exc))
        return redirect("chat:memories")
    if _wants_json(request):
        return JsonResponse({"id": str(memory.id), "text": memory.text})
    return redirect("chat:memories")


@login_required
@require_POST
def memory_delete(request: HttpRequest, memory_id):
    memory_service.memory_delete(memory=_own_memory(request, memory_id))
    if _wants_json(request):
        return JsonResponse({"deleted": True})
    return redirect("chat:memories")
