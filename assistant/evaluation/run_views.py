"""Staff pages for runs: /evaluation/ (the charts, the runs, start one), one run's cases, its
progress as JSON, and two runs side by side."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from assistant.evaluation import selectors
from assistant.evaluation.forms import RunForm
from assistant.evaluation.models import EvaluationRun
from assistant.evaluation.runs import cases_selected, run_create
from assistant.evaluation.tasks import evaluation_run
from connectors.selectors import acl_groups_of
from connectors.request_input import answers_bad_input, query_text
from connectors.staff import staff_required


def _run(run_id) -> EvaluationRun:
    try:
        run_id = uuid.UUID(str(run_id))
    except ValueError:
        raise Http404(_("No such run.")) from None
    run = EvaluationRun.objects.select_related("started_by", "assistant", "answered_by", "baseline", "profile").filter(
        id=run_id).first()
    if run is None:
        raise Http404(_("No such run."))
    return run


@staff_required
@answers_bad_input
@require_GET
def dashboard(request: HttpRequest):
    tag = query_text(request, "tag", max_chars=50)
    runs = list(selectors.runs_recent())
    return render(request, "evaluation/dashboard.html", {
        "charts": selectors.charts(tag=tag), "runs": runs, "tag": tag, "tags": selectors.case_tags(),
        "form": RunForm(), "finished": [r for r in runs if r.status == EvaluationRun.Status.SUCCEEDED],
    })


@staff_required
@answers_bad_input
@require_POST
def run_start(request: HttpRequest):
    """Queue a run of the cases the staff member may see (answered as their groups at most)."""
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the run's settings: %(errors)s")
                       % {"errors": "; ".join(e for errors in form.errors.values() for e in errors)})
        return redirect("evaluation:dashboard")
    data = form.cleaned_data
    cases = cases_selected(tag=data["tag"].strip(), assistant=data["assistant"],
                           reader_groups=acl_groups_of(request.user))
    if not cases:
        messages.error(request, _("No case you may see matches this tag and assistant."))
        return redirect("evaluation:dashboard")
    run = run_create(cases=cases, trigger=EvaluationRun.Trigger.PAGE, user=request.user, tag=data["tag"].strip(),
                     assistant=data["assistant"], answered_by=data["answered_by"], judge=data["judge"],
                     label=data["label"], profile=data["profile"])
    transaction.on_commit(lambda: evaluation_run.delay(str(run.id)))
    messages.success(request, _("The run was queued: %(count)s cases.") % {"count": len(cases)})
    return redirect("evaluation:run", run.id)


@staff_required
@answers_bad_input
@require_GET
def run_detail(request: HttpRequest, run_id):
    run = _run(run_id)
    results = selectors.results_shown(user=request.user, run=run)
    return render(request, "evaluation/run.html", {
        "run": run, "results": results, "failed": sum(1 for r in results if not r.passed),
        "metrics": selectors.metric_deltas(run.baseline or run, run),
        "others": [r for r in selectors.runs_recent() if r.id != run.id and r.status == EvaluationRun.Status.SUCCEEDED],
    })


@staff_required
@answers_bad_input
@require_GET
def run_progress(request: HttpRequest, run_id):
    run = _run(run_id)
    return JsonResponse({"status": run.status, "done": run.done, "total": run.total, "error": run.error,
                         "label": run.get_status_display()})


@staff_required
@answers_bad_input
@require_GET
def run_compare(request: HttpRequest):
    """?a=<run>&b=<run>: what changed from a to b."""
    try:
        before, after = _run(request.GET.get("a") or ""), _run(request.GET.get("b") or "")
    except Http404:
        return render(request, "bad_request.html", {"message": _("Pick two runs to compare.")}, status=400)
    return render(request, "evaluation/compare.html", {
        "before": before, "after": after, "pairs": selectors.runs_compared(user=request.user, before=before,
                                                                           after=after),
        "metrics": selectors.metric_deltas(before, after),
        "config_changes": selectors.config_differences(before.config, after.config),
    })
