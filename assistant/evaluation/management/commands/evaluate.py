"""`manage.py evaluate`: the public benchmarks of assistant/chat (retrieval, answers, sql), plus

    manage.py evaluate cases [--tag T] [--assistant A] [--with-assistant B] [--user NAME]
                             [--baseline RUN|FILE|last] [--tolerance X] [--judge] [--profile NAME]
                             [--set SETTING=VALUE] [--json-out FILE] [--label TEXT]
    manage.py evaluate answers ... --save-cases TAG

`cases` runs the evaluation cases through the chat's pipeline, stores the run and exits with
status 1, naming the cases that got worse, when a metric falls more than the tolerance below the
baseline. `answers --save-cases TAG` also saves the questions it asked as cases tagged TAG (and
keeps the corpus's connector, which the cases need). This app is listed before assistant.chat in
INSTALLED_APPS, so this command is the one `manage.py evaluate` runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from assistant.chat.management.commands.evaluate import Command as BenchmarkCommand
from assistant.chat.models import Assistant
from assistant.evaluation.compare import run_report
from assistant.evaluation.dataset_cases import save_qa_cases
from assistant.evaluation.models import EvaluationProfile, EvaluationRun
from assistant.evaluation.runs import cases_selected, run_compare, run_create, run_execute
from assistant.rag.evaluation.datasets import EvaluationError
from assistant.rag.evaluation.report import parse_overrides
from connectors.selectors import acl_groups_of

METRIC_COLUMNS = ("passed", "source_retrieved", "source_cited", "citation_validity", "must_contain",
                  "must_not_contain", "refusal", "f1", "judge_faithfulness", "judge_agreement")


class Command(BenchmarkCommand):
    help = BenchmarkCommand.help + " `cases`: the evaluation cases, stored as a run; the CI gate."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
        sub.choices["answers"].add_argument(
            "--save-cases", metavar="TAG", help="Also save the questions asked as evaluation cases tagged TAG.")
        p = sub.add_parser("cases", help="The evaluation cases through the chat pipeline, scored and stored.")
        p.add_argument("--tag", default="", help="Only the cases with this tag.")
        p.add_argument("--assistant", help="Only the cases of this assistant (its name).")
        p.add_argument("--with-assistant", help="Answer every case with this assistant instead of its own (A/B).")
        p.add_argument("--user", help="Only the cases this user may see (default: all).")
        p.add_argument("--baseline", help="A run id, 'last', or a report file: exit 1 on a regression.")
        p.add_argument("--tolerance", type=float, default=0.02,
                       help="Allowed absolute drop of a metric's mean below the baseline (default 0.02).")
        p.add_argument("--judge", action="store_true", help="Have the configured model grade each answer.")
        p.add_argument("--profile", help="Run with this settings profile (its name; see /evaluation/profiles/).")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SETTING=VALUE",
                       help="Override a setting for this run, e.g. --set RAG_TOP_K=8 (repeatable; wins over "
                            "the profile).")
        p.add_argument("--json-out", type=Path, help="Write the run's report (JSON) here; usable as a baseline.")
        p.add_argument("--label", default="", help="A name for the run on the page.")

    def handle(self, *args, **options):
        if options["subcommand"] == "cases":
            return self._cases(options)
        if options.get("save_cases"):
            options["keep"] = True  # the cases need the corpus in the index
        super().handle(*args, **options)
        if options.get("save_cases"):
            created, updated = save_qa_cases(options, tag=options["save_cases"])
            self.stdout.write(f"Saved the questions as cases tagged {options['save_cases']!r}: "
                              f"{created} new, {updated} updated.")

    def _assistant(self, name: str | None):
        if not name:
            return None
        found = Assistant.objects.filter(name=name).first()
        if found is None:
            raise CommandError(f"No assistant named {name!r}.")
        return found

    def _cases(self, options) -> None:
        try:
            overrides = parse_overrides(options["overrides"])
        except EvaluationError as exc:
            raise CommandError(str(exc)) from None
        if options["tolerance"] < 0:
            raise CommandError("--tolerance must not be negative.")
        groups = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
            groups = acl_groups_of(user)
        assistant, answered_by = self._assistant(options["assistant"]), self._assistant(options["with_assistant"])
        profile = None
        if options["profile"]:
            profile = EvaluationProfile.objects.filter(name=" ".join(options["profile"].split())).first()
            if profile is None:
                raise CommandError(f"No settings profile named {options['profile']!r} (see /evaluation/profiles/).")
        cases = cases_selected(tag=options["tag"], assistant=assistant, reader_groups=groups)
        if not cases:
            raise CommandError("No evaluation case matches (see /evaluation/cases/ or import some).")
        run = run_create(cases=cases, trigger=EvaluationRun.Trigger.COMMAND, tag=options["tag"], assistant=assistant,
                         answered_by=answered_by, judge=options["judge"], overrides=overrides, label=options["label"],
                         profile=profile)
        run = run_execute(run.id, log=self.stderr.write)
        self._print(run)
        if options["json_out"]:
            options["json_out"].parent.mkdir(parents=True, exist_ok=True)
            options["json_out"].write_text(json.dumps(run_report(run), indent=2) + "\n")
        if options["baseline"]:
            try:
                comparison = run_compare(run, baseline=options["baseline"], tolerance=options["tolerance"])
            except EvaluationError as exc:
                raise CommandError(str(exc)) from None
            if comparison.regressed:
                raise CommandError(comparison.describe(), returncode=1)
            self.stdout.write(f"No metric fell more than {options['tolerance']} below the baseline "
                              f"({comparison.common} cases compared).")

    def _print(self, run: EvaluationRun) -> None:
        metrics = run.metrics
        profile = (run.config.get("profile") or {}).get("name")
        self.stdout.write(f"Run {run.id}: {metrics.get('cases', 0)} cases, {metrics.get('failed', 0)} failed, "
                          f"model {run.config.get('model')}, commit {run.config.get('commit', '')[:12] or '?'}"
                          + (f", profile {profile!r}" if profile else ""))
        for name in METRIC_COLUMNS:
            if name in metrics:
                self.stdout.write(f"  {name:<20} {metrics[name]:.3f}")
        self.stdout.write(f"  median time {metrics.get('median_total_ms')} ms, first token "
                          f"{metrics.get('median_first_token_ms')} ms, app's own time per case "
                          f"{metrics.get('app_ms_per_case')} ms, tokens {metrics.get('tokens')}")
        for result in run.results.filter(passed=False):
            self.stdout.write(f"  FAIL {result.case_key} {result.question[:70]!r}: {', '.join(result.failures)}")
