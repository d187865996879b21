"""A run against its baseline (another run, or a JSON report of one from another installation):
which metrics fell more than the tolerance, and which cases got worse. The CI gate."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from assistant.evaluation.models import CaseResult, EvaluationRun
from assistant.evaluation.scoring import QUALITY_METRICS, means
from assistant.rag.evaluation.datasets import EvaluationError
from assistant.rag.evaluation.metrics import normalize_answer


def run_report(run: EvaluationRun, results=None) -> dict:
    """A run as JSON: its configuration, means and every case's scores (what --json-out writes)."""
    results = list(results if results is not None else run.results.all())
    return {
        "kind": "cases", "run": str(run.id), "label": run.label, "tag": run.tag, "status": run.status,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "config": run.config, "metrics": run.metrics,
        "cases": [{"id": r.case_key, "question": r.question, "passed": r.passed, "metrics": r.metrics,
                   "failures": r.failures, "answer": r.answer, "first_token_ms": r.first_token_ms,
                   "total_ms": r.total_ms, "model_ms": r.model_ms,
                   "tokens": r.prompt_tokens + r.completion_tokens,
                   "sources": [s.get("title", "") for s in r.sources]} for r in results],
    }


def baseline_report(reference: str, *, current: EvaluationRun) -> dict:
    """`reference`: a JSON report file, a run's id (or its first 8+ characters), or "last" (the newest
    finished run of the same tag before this one)."""
    path = Path(reference).expanduser()
    if path.is_file():
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EvaluationError(f"Cannot read the baseline {path}: {exc}") from None
        if not isinstance(report, dict) or not isinstance(report.get("cases"), list):
            raise EvaluationError(f"{path} is not a report of `evaluate cases` (no \"cases\" list).")
        return report
    runs = EvaluationRun.objects.exclude(id=current.id).filter(status=EvaluationRun.Status.SUCCEEDED)
    if reference in ("last", "latest"):
        run = runs.filter(tag=current.tag, created_at__lt=current.created_at).order_by("-created_at").first()
    else:
        run = _run_by_reference(runs, reference)
    if run is None:
        raise EvaluationError(f"No finished run or report file {reference!r} to compare with.")
    return run_report(run, CaseResult.objects.filter(run=run))


def _run_by_reference(runs, reference: str):
    try:
        return runs.filter(id=uuid.UUID(reference)).first()
    except ValueError:
        pass
    if len(reference) < 8 or any(c not in "0123456789abcdef-" for c in reference.lower()):
        return None
    matches = [r for r in runs.only("id") if str(r.id).startswith(reference.lower())]
    return matches[0] if len(matches) == 1 else None


@dataclass
class Comparison:
    regressions: list[dict] = field(default_factory=list)  # {"metric", "baseline", "current", "drop"}
    worse: list[dict] = field(default_factory=list)  # {"id", "question", "changes": {metric: [before, after]}}
    common: int = 0
    added: int = 0
    removed: int = 0

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def describe(self) -> str:
        lines = [f"{len(self.regressions)} metric(s) fell more than the tolerance below the baseline:"]
        lines += [f"  {r['metric']}: {r['baseline']:.3f} -> {r['current']:.3f} (-{r['drop']:.3f})"
                  for r in self.regressions]
        lines.append(f"Cases that got worse ({len(self.worse)}):")
        for case in self.worse:
            changes = ", ".join(f"{m} {b:.2f} -> {a:.2f}" for m, (b, a) in case["changes"].items())
            lines.append(f"  {case['id']} {case['question'][:80]!r}: {changes}")
        return "\n".join(lines)


def _key(case: dict) -> str:
    return normalize_answer(str(case.get("question") or ""))


def _pairs(current: dict, baseline: dict) -> list[tuple[dict, dict]]:
    """Cases in both reports: by id, else by question (a set imported into another installation)."""
    before_by_id = {str(c.get("id")): c for c in baseline.get("cases", []) if isinstance(c, dict)}
    before_by_question = {_key(c): c for c in before_by_id.values()}
    pairs = []
    for case in current.get("cases", []):
        before = before_by_id.get(str(case.get("id"))) or before_by_question.get(_key(case))
        if before is not None:
            pairs.append((case, before))
    return pairs


def _metrics(case: dict) -> dict:
    values = dict(case.get("metrics") or {})
    values.setdefault("passed", float(bool(case.get("passed"))))
    return values


def compare_reports(current: dict, baseline: dict, *, tolerance: float) -> Comparison:
    """Means over the cases both runs have; a metric that fell more than `tolerance` regressed,
    and the cases whose value of it fell (by more than the tolerance) are named."""
    if tolerance < 0:
        raise EvaluationError("The tolerance must not be negative.")
    pairs = _pairs(current, baseline)
    now = means([_metrics(c) for c, _b in pairs])
    before = means([_metrics(b) for _c, b in pairs])
    result = Comparison(common=len(pairs), added=len(current.get("cases", [])) - len(pairs),
                        removed=len(baseline.get("cases", [])) - len(pairs))
    for metric in QUALITY_METRICS:
        if metric in before and before[metric] - now.get(metric, 0.0) > tolerance + 1e-9:
            result.regressions.append({"metric": metric, "baseline": before[metric], "current": now.get(metric, 0.0),
                                       "drop": round(before[metric] - now.get(metric, 0.0), 4)})
    fallen = {r["metric"] for r in result.regressions}
    for case, old in pairs:
        new_values, old_values = _metrics(case), _metrics(old)
        changes = {m: [old_values[m], new_values.get(m) or 0.0] for m in fallen
                   if old_values.get(m) is not None and old_values[m] - (new_values.get(m) or 0.0) > tolerance + 1e-9}
        if changes:
            result.worse.append({"id": case.get("id"), "question": str(case.get("question") or ""),
                                 "changes": changes})
    return result
