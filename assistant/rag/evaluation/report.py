"""An evaluation's report: printed as a table and JSON, saved, compared with a baseline (the CI
gate), and the `--set SETTING=VALUE` overrides it ran with."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings

from assistant.rag.evaluation import metrics as ev
from assistant.rag.evaluation.datasets import EvaluationError


class Regressed(EvaluationError):
    """A metric fell more than the tolerance below the baseline (exit status 1)."""


def suite_table(reports: list[dict], columns) -> str:
    """One table for several corpora: a row per corpus and mode."""
    rows = {f"{report['dataset']} {mode}": values for report in reports for mode, values in report["metrics"].items()}
    return ev.format_table(rows, columns, label="corpus mode")


def report_print(report: dict, columns, out) -> None:
    if report["kind"] == "retrieval-suite":
        reports = report["reports"]
        title = ", ".join(f"{r['dataset']} ({r['split']}, {r['queries']} queries)" for r in reports)
        out(f"{title}, {report['timing']['total_s']}s\n{suite_table(reports, columns)}\n")
        out(json.dumps({**report, "reports": [{k: v for k, v in r.items() if k != "items"} for r in reports]}, indent=2) + "\n")
        return
    if report["kind"] == "retrieval":
        table = ev.format_table(report["metrics"], columns)
        title = f"{report['dataset']} ({report['split']}, {report['queries']} queries)"
    else:
        table = ev.format_table({report["kind"]: report["metrics"]}, columns)
        title = f"{report['dataset']} ({report['questions']} questions, model {report['settings']['llm_model']})"
    out(f"{title}, {report['timing']['total_s']}s\n{table}\n")
    out(json.dumps({k: v for k, v in report.items() if k != "items"}, indent=2) + "\n")


def report_save(report: dict, *targets: Path | None, log) -> None:
    for target in targets:
        if target:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(report, indent=2) + "\n")
            log(f"wrote {target}")


def report_compare(report: dict, baseline_path: Path, tolerance: float, log) -> None:
    """Raises Regressed naming every metric that fell more than `tolerance` below the baseline.

    A suite (several corpora) is compared corpus by corpus with the baseline's report of the
    same data set; a baseline may hold one corpus or a suite."""
    try:
        baseline = json.loads(baseline_path.read_text())
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"Cannot read baseline {baseline_path}: {exc}") from None
    if report["kind"] == "retrieval-suite" or baseline.get("kind") == "retrieval-suite":
        _suite_compare(report, baseline, tolerance, log)
        return
    _report_compare(report, baseline, tolerance, log)


def _suite_compare(report: dict, baseline: dict, tolerance: float, log) -> None:
    expected = {r["dataset"]: r for r in baseline.get("reports", [baseline])}
    failures = []
    for current in report.get("reports", [report]):
        if current["dataset"] not in expected:
            log(f"note: the baseline has no report for {current['dataset']}")
            continue
        try:
            _report_compare(current, expected[current["dataset"]], tolerance, log)
        except Regressed as exc:
            failures.append(f"{current['dataset']}: {exc}")
    if failures:
        raise Regressed("\n".join(failures))


def _report_compare(report: dict, baseline: dict, tolerance: float, log) -> None:
    for key in ("kind", "dataset", "split", "queries", "questions"):
        if key in baseline and baseline.get(key) != report.get(key):
            log(f"warning: baseline {key} is {baseline.get(key)!r}, this run's {report.get(key)!r}")
    expected = dict(baseline.get("metrics", {}))
    if report["kind"] == "retrieval":
        # Modes left out on purpose (--modes) are not compared; a metric missing from an
        # evaluated mode still counts as a regression.
        skipped = sorted(set(expected) - set(report["metrics"]))
        if skipped:
            log(f"note: baseline modes not evaluated in this run: {', '.join(skipped)}")
        expected = {mode: values for mode, values in expected.items() if mode in report["metrics"]}
    regressions = ev.compare(report, {"metrics": expected}, tolerance)
    if regressions:
        lines = "\n".join(f"  {r}" for r in regressions)
        raise Regressed(f"{len(regressions)} metric(s) fell below the baseline:\n{lines}")


def parse_overrides(items: list[str]) -> dict:
    """`SETTING=VALUE` strings as settings of the setting's own type."""
    overrides = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isupper() or not hasattr(settings, key):
            raise EvaluationError(f"--set takes SETTING=VALUE with an existing setting name; got {item!r}")
        current = getattr(settings, key)
        try:
            if isinstance(current, bool):
                value = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(current, int):
                value = int(raw)
            elif isinstance(current, float):
                value = float(raw)
            elif isinstance(current, (list, tuple)):
                value = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                value = raw
        except ValueError:
            raise EvaluationError(f"--set {key}: {raw!r} is not a valid {type(current).__name__}") from None
        overrides[key] = value
    return overrides


def jsonable(value):
    return value if isinstance(value, (int, float, str, bool, list, type(None))) else str(value)
