"""Evaluation runs in a worker: one started on the page, and the nightly run of a tag (beat)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from assistant.evaluation.models import EvaluationRun
from assistant.evaluation.notify import regression_notify
from assistant.evaluation.runs import cases_selected, run_compare, run_create, run_execute
from assistant.rag.evaluation.datasets import EvaluationError

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def evaluation_run(run_id: str) -> str:
    """Run the cases of a queued run (a second delivery goes on where the first stopped)."""
    run = run_execute(run_id)
    if run.trigger == EvaluationRun.Trigger.SCHEDULE and run.status == EvaluationRun.Status.SUCCEEDED:
        try:
            comparison = run_compare(run, baseline="last", tolerance=settings.EVALUATION_NIGHTLY_TOLERANCE)
        except EvaluationError:
            return run.status  # the first run of the tag: nothing to compare with
        if comparison.regressed:
            regression_notify(run=run, comparison=comparison)
    return run.status


@shared_task(acks_late=True)
def evaluation_nightly() -> str | None:
    """Beat: queue a run of EVALUATION_NIGHTLY_TAG unless one is still queued or running."""
    tag = settings.EVALUATION_NIGHTLY_TAG
    if not tag or EvaluationRun.objects.filter(tag=tag, status__in=EvaluationRun.ACTIVE).exists():
        return None
    cases = cases_selected(tag=tag)
    if not cases:
        logger.warning("nightly evaluation: no case is tagged %r", tag)
        return None
    run = run_create(cases=cases, trigger=EvaluationRun.Trigger.SCHEDULE, tag=tag, label=f"nightly {tag}")
    evaluation_run.delay(str(run.id))
    return str(run.id)
