"""Reads for the pages: cases a staff member may see, runs, their results and two runs side by side.

A result is shown only when its case is visible to the reader (or, for a deleted case, when the
reader may read every document the answer saw); sources are re-checked against the reader's
access when shown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import QuerySet

from assistant.evaluation.access import cases_visible
from assistant.evaluation.models import CaseResult, EvaluationCase, EvaluationRun
from assistant.evaluation.scoring import QUALITY_METRICS
from connectors.selectors import documents_visible

CHART_RUNS = 30


def cases_listed(*, user, tag: str = "", assistant_id=None) -> list[EvaluationCase]:
    cases = EvaluationCase.objects.select_related("assistant").order_by("-created_at")
    if tag:
        cases = cases.filter(tags__contains=[tag])
    if assistant_id == "default":
        cases = cases.filter(assistant__isnull=True)
    elif assistant_id:
        try:
            cases = cases.filter(assistant_id=uuid.UUID(str(assistant_id)))
        except ValueError:  # not an assistant's id: nothing matches
            return []
    return cases_visible(cases, user=user)


def case_get_visible(*, user, case_id) -> EvaluationCase:
    """The case if `user` may see it; EvaluationCase.DoesNotExist otherwise."""
    case = EvaluationCase.objects.select_related("assistant", "source_message").get(id=case_id)
    if not cases_visible([case], user=user):
        raise EvaluationCase.DoesNotExist
    return case


def case_tags() -> list[str]:
    return sorted({tag for tags in EvaluationCase.objects.values_list("tags", flat=True) for tag in tags})


def runs_recent(limit: int = 50) -> QuerySet[EvaluationRun]:
    return EvaluationRun.objects.select_related("started_by", "assistant", "answered_by", "profile").order_by(
        "-created_at")[:limit]


@dataclass
class Chart:
    metric: str
    points: list[tuple[str, str, str, float]]  # x, y in a 300 x 80 box (as SVG writes them), the run's label, value
    latest: float | None

    @property
    def polyline(self) -> str:
        return " ".join(f"{x},{y}" for x, y, _label, _value in self.points)


def charts(*, tag: str = "") -> list[Chart]:
    """Each quality metric over the last finished runs (of a tag), oldest to newest, as SVG points."""
    runs = EvaluationRun.objects.filter(status=EvaluationRun.Status.SUCCEEDED)
    if tag:
        runs = runs.filter(tag=tag)
    runs = list(reversed(runs.order_by("-created_at")[:CHART_RUNS]))
    out = []
    for metric in QUALITY_METRICS:
        series = [(run, run.metrics[metric]) for run in runs if isinstance(run.metrics.get(metric), (int, float))]
        if not series:
            continue
        step = 280 / max(1, len(series) - 1)
        points = [(f"{10 + i * step if len(series) > 1 else 150:.1f}", f"{70 - 60 * value:.1f}",
                   f"{run.label or str(run.id)[:8]} · {run.created_at:%Y-%m-%d %H:%M}", value)
                  for i, (run, value) in enumerate(series)]
        out.append(Chart(metric=metric, points=points, latest=series[-1][1]))
    return out


def _documents_readable(user, results) -> set[str]:
    ids = {s.get("document_id") for r in results for s in r.sources if s.get("document_id")}
    return {str(i) for i in documents_visible(user=user).filter(id__in=ids).values_list("id", flat=True)} if ids else set()


def results_shown(*, user, run: EvaluationRun) -> list[CaseResult]:
    """The run's results the reader may see, each with `shown_sources` (those they may read)."""
    results = list(run.results.select_related("case"))
    visible = {c.id for c in cases_visible([r.case for r in results if r.case], user=user)}
    readable = _documents_readable(user, results)
    shown = []
    for result in results:
        own = {s.get("document_id") for s in result.sources if s.get("document_id")}
        if (result.case_id in visible) or (result.case_id is None and own <= readable):
            result.shown_sources = [s for s in result.sources if s.get("document_id") in readable]
            shown.append(result)
    return shown


@dataclass
class Pair:
    key: str
    question: str
    before: CaseResult | None
    after: CaseResult | None

    @property
    def changed(self) -> bool:
        if self.before is None or self.after is None:
            return True
        return (self.before.passed != self.after.passed or self.before.answer != self.after.answer
                or [s.get("title") for s in self.before.sources] != [s.get("title") for s in self.after.sources])

    @property
    def verdict(self) -> str:
        if self.before is None or self.after is None:
            return "added" if self.before is None else "removed"
        if self.before.passed != self.after.passed:
            return "fixed" if self.after.passed else "broken"
        return "changed"


def runs_compared(*, user, before: EvaluationRun, after: EvaluationRun) -> list[Pair]:
    """The cases whose result changed between two runs (both answers and source lists)."""
    old = {r.case_key: r for r in results_shown(user=user, run=before)}
    new = {r.case_key: r for r in results_shown(user=user, run=after)}
    pairs = [Pair(key, (new.get(key) or old.get(key)).question, old.get(key), new.get(key))
             for key in dict.fromkeys([*new, *old])]
    order = {"broken": 0, "fixed": 1, "changed": 2, "added": 3, "removed": 4}
    return sorted((p for p in pairs if p.changed), key=lambda p: order[p.verdict])


def _flat(config, prefix: str = "") -> dict:
    out = {}
    for key, value in (config or {}).items():
        if key in ("overrides", "profile"):  # what they changed shows under the settings' own names
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(before: dict, after: dict) -> list[tuple[str, object, object]]:
    """What differs between two runs' configurations ("search.top_k", 5, 8): the model, its
    parameters, the search settings, the commit... (the profile's name is shown apart; the model
    server's address is left out)."""
    old, new = _flat(before), _flat(after)
    keys = [k for k in dict.fromkeys([*old, *new]) if k != "llm_base_url"]
    return [(key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)]


def metric_deltas(before: EvaluationRun, after: EvaluationRun) -> list[tuple[str, float | None, float | None]]:
    return [(m, before.metrics.get(m), after.metrics.get(m)) for m in QUALITY_METRICS
            if m in before.metrics or m in after.metrics]
