"""Runs: which cases, started by whom, executed case by case with progress, stored with the
configuration, compared with a baseline."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.db import transaction
from django.db.models import F
from django.test.utils import override_settings
from django.utils import timezone

from assistant.chat.models import Conversation
from assistant.evaluation import scoring
from assistant.evaluation.access import cases_readable
from assistant.evaluation.compare import baseline_report, compare_reports, run_report
from assistant.evaluation.config import config_snapshot
from assistant.evaluation.models import CaseResult, EvaluationCase, EvaluationRun
from assistant.evaluation.profiles import run_overrides
from assistant.evaluation.runner import case_run, runner_user
from connectors.selectors import acl_groups_of

logger = logging.getLogger(__name__)


def cases_selected(*, tag: str = "", assistant=None, reader_groups: list[str] | None = None) -> list[EvaluationCase]:
    """The cases of a tag and/or an assistant, oldest first; with `reader_groups`, only those a
    reader in these groups may see (assistant/evaluation/access.py)."""
    cases = EvaluationCase.objects.select_related("assistant").order_by("created_at", "id")
    if tag:
        cases = cases.filter(tags__contains=[tag])
    if assistant is not None:
        cases = cases.filter(assistant=assistant)
    return list(cases) if reader_groups is None else cases_readable(cases, groups=reader_groups)


@transaction.atomic
def run_create(*, cases: list[EvaluationCase], trigger: str, user=None, tag: str = "", assistant=None,
               answered_by=None, judge: bool = False, overrides: dict | None = None, label: str = "",
               profile=None) -> EvaluationRun:
    """A queued run; its settings (the profile's, then `overrides`) are fixed now, so editing the
    profile later changes neither this run nor a redelivery of it."""
    return EvaluationRun.objects.create(
        label=label[:200], trigger=trigger, started_by=user, tag=tag, assistant=assistant, answered_by=answered_by,
        judge=judge, profile=profile, overrides=run_overrides(profile=profile, extra=overrides),
        case_ids=[str(c.id) for c in cases], total=len(cases),
        config={"profile": {"name": profile.name, "settings": dict(profile.values)}} if profile else {},
    )


def _groups_for(case: EvaluationCase, run: EvaluationRun) -> list[str]:
    """The case's groups; a run started on the page never reaches beyond its starter's groups."""
    if run.trigger == EvaluationRun.Trigger.PAGE and run.started_by is not None:
        return sorted(set(case.groups) & set(acl_groups_of(run.started_by)))
    return list(case.groups)


def _aggregate(run: EvaluationRun) -> dict:
    results = list(run.results.all())
    metrics = scoring.means([r.metrics for r in results])
    timed = sorted(r.total_ms for r in results)
    first = sorted(r.first_token_ms for r in results if r.first_token_ms is not None)
    metrics.update({
        "cases": len(results), "failed": sum(1 for r in results if not r.passed),
        "median_total_ms": timed[len(timed) // 2] if timed else None,
        "median_first_token_ms": first[len(first) // 2] if first else None,
        "tokens": sum(r.prompt_tokens + r.completion_tokens for r in results),
        "app_ms_per_case": round(sum(r.total_ms - r.model_ms for r in results) / len(results), 1) if results else None,
    })
    return metrics


def run_execute(run_id, *, log: Callable[[str], None] | None = None) -> EvaluationRun:
    """Run every case of the run not yet scored (a second delivery continues, never repeats)."""
    claimed = EvaluationRun.objects.filter(id=run_id, status__in=EvaluationRun.ACTIVE).update(
        status=EvaluationRun.Status.RUNNING, started_at=timezone.now())
    run = EvaluationRun.objects.select_related("answered_by", "started_by").get(id=run_id)
    if not claimed:
        return run
    by_id = {str(c.id): c for c in EvaluationCase.objects.filter(id__in=run.case_ids).select_related("assistant")}
    scored = set(CaseResult.objects.filter(run=run).values_list("case_key", flat=True))  # a redelivery goes on
    users: dict[tuple, object] = {}  # one runner user per set of groups
    conversations: list = []  # the cases' conversations, deleted together at the end
    try:
        with override_settings(**run.overrides):
            EvaluationRun.objects.filter(id=run.id).update(
                config=config_snapshot(answered_by=run.answered_by, overrides=run.overrides,
                                       profile=run.config.get("profile")))
            for number, key in enumerate(run.case_ids, start=1):
                case = by_id.get(key)
                if case is None or key in scored:
                    continue
                groups = tuple(sorted(_groups_for(case, run)))
                if groups not in users:
                    users[groups] = runner_user(list(groups))
                outcome = case_run(case, groups=list(groups), assistant=run.answered_by, judge=run.judge,
                                   user=users[groups], conversations=conversations)
                CaseResult.objects.create(run=run, case=case, case_key=key, **outcome.fields)
                EvaluationRun.objects.filter(id=run.id).update(done=F("done") + 1)
                if log:
                    f = outcome.fields
                    log(f"[{number}/{run.total}] {'pass' if f['passed'] else 'FAIL ' + ','.join(f['failures'])} "
                        f"{f['total_ms']} ms {case.question[:70]!r}")
    except Exception as exc:
        Conversation.objects.filter(id__in=conversations).delete()
        logger.exception("evaluation run %s failed", run.id)
        EvaluationRun.objects.filter(id=run.id).update(status=EvaluationRun.Status.FAILED, error=str(exc)[:2000],
                                                        finished_at=timezone.now())
        raise
    Conversation.objects.filter(id__in=conversations).delete()
    run.refresh_from_db()
    run.metrics, run.status, run.finished_at = _aggregate(run), EvaluationRun.Status.SUCCEEDED, timezone.now()
    run.save(update_fields=["metrics", "status", "finished_at"])
    return run


def _stored_run(run_id):
    """The run a report came from, when it is one of this installation's."""
    try:
        return EvaluationRun.objects.filter(id=uuid.UUID(str(run_id))).first()
    except ValueError:
        return None


def run_compare(run: EvaluationRun, *, baseline: str, tolerance: float):
    """Compare with `baseline` (a run's id, "last", or a report file) and store what regressed."""
    reference = baseline_report(baseline, current=run)
    comparison = compare_reports(run_report(run), reference, tolerance=tolerance)
    base = _stored_run(reference.get("run"))
    run.baseline = base if base and base.id != run.id else None
    run.regressions = [*comparison.regressions, *({"case": c} for c in comparison.worse)]
    run.save(update_fields=["baseline", "regressions"])
    return comparison
