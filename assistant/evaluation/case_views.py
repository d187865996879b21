"""Staff pages for cases: list (filter by tag and assistant), new (optionally from an answer),
edit, delete, JSON Lines export and import. Non-staff get a 404 (connectors.staff); a case
about sources the reader may not read is a 404 too."""

from __future__ import annotations

import io
import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assistant.chat.models import Assistant, Message
from assistant.evaluation import selectors, services
from assistant.evaluation.cases_io import cases_import, cases_jsonl
from assistant.evaluation.forms import CaseForm
from assistant.evaluation.models import EvaluationCase
from assistant.evaluation.services import CaseData, CaseInvalid, message_sources
from connectors.request_input import answers_bad_input, query_text, text
from connectors.staff import staff_required

MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _filters(request: HttpRequest) -> dict:
    return {"tag": query_text(request, "tag", max_chars=50), "assistant": query_text(request, "assistant", max_chars=40)}


@staff_required
@answers_bad_input
@require_GET
def case_list(request: HttpRequest):
    filters = _filters(request)
    assistant = filters["assistant"]
    if assistant and assistant != "default" and not Assistant.objects.filter(id=_uuid_or_none(assistant)).exists():
        assistant, filters["assistant"] = "", ""
    cases = selectors.cases_listed(user=request.user, tag=filters["tag"], assistant_id=assistant or None)
    page = Paginator(cases, 50).get_page(request.GET.get("page"))
    return render(request, "evaluation/cases.html", {
        "page": page, "filters": filters, "tags": selectors.case_tags(), "assistants": Assistant.objects.all(),
        "count": len(cases),
    })


def _uuid_or_none(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _message_for(request: HttpRequest) -> Message | None:
    raw = text(request.GET, "message", max_chars=100) or text(request.POST, "message", max_chars=100)
    if not raw:
        return None
    message = Message.objects.select_related("conversation", "conversation__assistant", "conversation__user").filter(
        id=_uuid_or_none(raw)).first()
    if message is None:
        raise Http404(_("No such answer."))
    return message


def _form_page(request, form: CaseForm, *, case=None, message=None, status=200):
    return render(request, "evaluation/case_form.html",
                  {"form": form, "case": case, "message": message, "history": form.history}, status=status)


@staff_required
@answers_bad_input
@require_http_methods(["GET", "POST"])
def case_new(request: HttpRequest):
    """A new case; with ?message=<answer id>, prefilled from that answer (the one step from a message
    or the feedback list: check it, then Save)."""
    message = _message_for(request)
    base, candidates = CaseData(question=""), []
    if message is not None:
        try:
            base = services.case_prefill(message=message)
        except CaseInvalid as exc:
            messages.error(request, str(exc))
            return redirect("evaluation:cases")
        candidates = message_sources(message)
    if request.method == "GET":
        return _form_page(request, CaseForm(initial=CaseForm.initial_from(base), candidates=candidates,
                                            history=base.history), message=message)
    form = CaseForm(request.POST, candidates=candidates, history=base.history)
    if form.is_valid():
        try:
            case = services.case_create(data=form.case_data(base=base), user=request.user)
        except CaseInvalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The evaluation case was saved."))
            return redirect("evaluation:case", case.id)
    return _form_page(request, form, message=message, status=400)


def _visible_case(request, case_id) -> EvaluationCase:
    try:
        return selectors.case_get_visible(user=request.user, case_id=case_id)
    except EvaluationCase.DoesNotExist:
        raise Http404(_("No such case.")) from None


@staff_required
@answers_bad_input
@require_http_methods(["GET", "POST"])
def case_edit(request: HttpRequest, case_id):
    case = _visible_case(request, case_id)
    candidates = list(case.expected_sources)
    if case.source_message is not None:
        candidates += [s for s in message_sources(case.source_message)
                       if {k: v for k, v in s.items() if k != "cited"} not in candidates]
    current = CaseData(question=case.question, history=case.history, assistant=case.assistant,
                       expected_answer=case.expected_answer, alternative_answers=case.alternative_answers,
                       expected_sources=case.expected_sources, must_contain=case.must_contain,
                       must_not_contain=case.must_not_contain, expect_refusal=case.expect_refusal, tags=case.tags,
                       groups=case.groups, origin=case.origin, external_id=case.external_id)
    if request.method == "GET":
        return _form_page(request, CaseForm(initial=CaseForm.initial_from(current), candidates=candidates,
                                            history=case.history), case=case)
    form = CaseForm(request.POST, candidates=candidates, history=case.history)
    if form.is_valid():
        try:
            services.case_update(case=case, data=form.case_data(base=current))
        except CaseInvalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The evaluation case was saved."))
            return redirect("evaluation:case", case.id)
    return _form_page(request, form, case=case, status=400)


@staff_required
@answers_bad_input
@require_POST
def case_delete(request: HttpRequest, case_id):
    case = _visible_case(request, case_id)
    services.case_delete(case=case)
    messages.success(request, _("The evaluation case was deleted."))
    return redirect("evaluation:cases")


@staff_required
@answers_bad_input
@require_GET
def case_export(request: HttpRequest):
    filters = _filters(request)
    cases = selectors.cases_listed(user=request.user, tag=filters["tag"], assistant_id=filters["assistant"] or None)
    response = StreamingHttpResponse(cases_jsonl(cases), content_type="application/x-ndjson; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="evaluation-cases-{stamp}.jsonl"'
    response["Cache-Control"] = "no-store"
    return response


@staff_required
@answers_bad_input
@require_POST
def case_import(request: HttpRequest):
    upload = request.FILES.get("file")
    if upload is None or upload.size > MAX_IMPORT_BYTES:
        messages.error(request, _("Choose a JSON Lines file of at most 20 MB."))
        return redirect("evaluation:cases")
    tags = [t.strip() for t in text(request.POST, "tags", max_chars=300).split(",") if t.strip()][:5]
    try:
        lines = io.TextIOWrapper(upload.file, encoding="utf-8", errors="strict")
        created, updated = cases_import(lines, user=request.user, tags=tags)
    except UnicodeDecodeError:
        messages.error(request, _("The file is not UTF-8 text."))
    except CaseInvalid as exc:
        messages.error(request, _("Nothing was imported. %(error)s") % {"error": exc})
    else:
        messages.success(request, _("%(created)s cases imported, %(updated)s updated.")
                         % {"created": created, "updated": updated})
    return redirect("evaluation:cases")
