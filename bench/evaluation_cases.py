"""The app's own time per evaluation case, beyond the model's. Prints one JSON object.

A run of N cases (default 50) about the demo handbook goes through `manage.py evaluate cases`
(the chat's own pipeline: the answer claimed and saved in PostgreSQL, the question embedded with
the in-process model and searched under the ACL, the agent path, citations checked, the answer
scored and its result stored) against a scripted OpenAI-compatible model server in this process
that answers at once. Each case's time less the time spent waiting on the model server is the
app's own time: conversation, retrieval, saving, scoring, storing. Target: median under 150 ms.

Beside the wall time, CPU time per case: this process's (the app's) and PostgreSQL's for this
database (its server processes' CPU time, read from /proc), neither of which the other users of a
shared machine inflate. The product's default answer path (no tools) unless --agent.

Runs in a scratch database (created, migrated and dropped). Usage:
    .venv/bin/python bench/evaluation_cases.py [--cases 50] [--judge] [--agent]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.retrieval import bench_environment, create_database, drop_database  # noqa: E402 - after the path is set

TARGET_MS = 150.0
QUESTIONS = [
    "How many days of paid leave do employees get?", "What is the travel policy for trains?",
    "Where are the offices?", "What must a new employee do in the first week?",
    "What changed in the last release?", "How should passwords be managed?",
]


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "max": round(ordered[-1], 1), "samples": len(ordered)}


def database_cpu_seconds(name: str) -> dict[int, float]:
    """CPU time so far of each PostgreSQL server process serving database `name` (Linux /proc;
    a process that ends before the second reading is not counted)."""
    ticks, out = os.sysconf("SC_CLK_TCK"), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not command.startswith("postgres:") or f" {name} " not in command:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _corpus() -> None:
    from connectors.models import Connector, SyncRun
    from connectors.sync import sync_run_execute

    connector = Connector.objects.create(name="Handbook", kind="folder", is_public=True,
                                         config={"path": str(ROOT / "samples" / "handbook")})
    sync_run_execute(SyncRun.objects.create(connector=connector).id)


def measure(cases: int, judge: bool, agent: bool = False) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from assistant.chat.answering import get_chat_client
    from assistant.evaluation.models import CaseResult, EvaluationCase, EvaluationRun
    from tests.chat.scripted_llm import ScriptedModel, Say

    from assistant.celery import app

    app.conf.task_always_eager = True  # the sync's index batches, inline
    _corpus()
    answer = Say("According to the handbook, yes {cite:Employee handbook}.")
    verdict = Say('{"faithfulness": 5, "agreement": 4, "reasons": "Supported."}')
    model = ScriptedModel([answer, verdict] if judge else [answer])
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_TOOLS = model.base_url, "scripted", agent
    get_chat_client.cache_clear()
    for i in range(cases):
        EvaluationCase.objects.create(question=QUESTIONS[i % len(QUESTIONS)] + f" ({i})", expected_answer="yes",
                                      must_contain=["handbook"], tags=["bench"])
    try:
        model.replay([answer, verdict] if judge else [answer])
        database = settings.DATABASES["default"]["NAME"]
        load_start, db_cpu = os.getloadavg()[0], database_cpu_seconds(database)
        cpu = time.process_time()
        call_command("evaluate", "cases", "--tag", "bench", *(["--judge"] if judge else []), stdout=open(os.devnull, "w"),
                     stderr=open(os.devnull, "w"))
        cpu = time.process_time() - cpu
        db_cpu = sum(v - db_cpu.get(pid, 0.0) for pid, v in database_cpu_seconds(database).items())
    finally:
        model.close()
    run = EvaluationRun.objects.get()
    results = list(CaseResult.objects.filter(run=run))
    app_ms = [r.total_ms - r.model_ms for r in results]
    return {
        "cases": len(results), "passed": sum(r.passed for r in results),
        # wall: each case's time less the time spent waiting on the model server
        "app_ms_per_case": percentiles(app_ms), "model_ms_per_case": percentiles([r.model_ms for r in results]),
        "total_ms_per_case": percentiles([r.total_ms for r in results]),
        "run_wall_s": round((run.finished_at - run.started_at).total_seconds(), 2),
        # This process's CPU time per case (every thread, the scripted server's included; not
        # PostgreSQL's): what the app costs when the machine is not shared, load aside.
        "process_cpu_ms_per_case": round(cpu * 1000 / max(1, len(results)), 1),
        "database_cpu_ms_per_case": round(db_cpu * 1000 / max(1, len(results)), 1),
        "answer_path": "agent (tools)" if agent else "plain (the default: LLM_TOOLS off)",
        "load_average_1m_start": round(load_start, 1),
        "load_average_1m": round(os.getloadavg()[0], 1), "cpu_count": os.cpu_count(),
        "target_ms": TARGET_MS, "meets_target": statistics.median(app_ms) < TARGET_MS,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--judge", action="store_true")
    parser.add_argument("--agent", action="store_true", help="The agent path (LLM_TOOLS on) instead of the default.")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_evaluation_cases")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    create_database(args.database_url)
    os.environ.update(bench_environment(args.database_url))
    os.environ["CONNECTOR_DATA_DIR"] = str(ROOT / "samples" / "handbook")
    import django

    django.setup()
    try:
        results = measure(args.cases, args.judge, args.agent)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url)
    report = {"benchmark": "evaluation_cases", "judge": args.judge, **results,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
