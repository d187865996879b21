"""The agent loop's own cost. Prints one JSON object.

Answers run through the real pipeline (answer_events: the answer claimed and saved in
PostgreSQL, the question searched once up front, each step saved as it ends, Stop checked)
against a scripted OpenAI-compatible model server in this process that streams real
`tool_calls`, with a no-op tool. Measured:

1. The app's own time per tool step: from the model's last byte of a turn that called the
   tool to the next request reaching the model server, less the tool's own run time. It holds
   reading the stream, checking the call, starting the tool's thread, the step events, saving
   the step, building and sending the next request. Target: median under 30 ms.
2. A 3-step answer against a 1-step one: each answer's wall time less the model server's time
   and the tool's; the difference is what two more steps cost the app.

Runs in a scratch database (created, migrated and dropped). Usage:
    .venv/bin/python bench/agent.py [--runs 15]
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

TARGET_MS = 30.0


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
        "samples": len(ordered),
    }


def noop_tool(durations: list[float]):
    from pydantic import BaseModel

    from assistant.agent.registry import Tool, ToolResult, register

    class Nothing(BaseModel):
        pass

    @register
    class Noop(Tool):
        name = "noop"
        description = "Does nothing."
        Arguments = Nothing

        def run(self, context, arguments) -> ToolResult:
            started = time.perf_counter()
            result = ToolResult(content="Nothing to report.", summary="Did nothing")
            durations.append(time.perf_counter() - started)
            return result

    return Noop


def one_answer(model, user, steps: int, tool_durations: list[float]) -> dict:
    """One answer of `steps` tool steps then text; the app's times from the server's clock."""
    from asgiref.sync import async_to_sync

    from assistant.chat.answering import answer_events
    from assistant.chat.models import Conversation, Message
    from assistant.chat.services import question_submit
    from tests.chat.scripted_llm import Call, Say

    model.replay([Call.of(("noop", {}))] * steps + [Say("Done.")])
    tool_durations.clear()
    conversation = Conversation.objects.create(user=user)
    _, answer = question_submit(conversation=conversation, content="Check nothing, then say done.")

    async def run():
        return [event async for event in answer_events(answer, user)]

    started = time.perf_counter()
    events = async_to_sync(run)()
    wall = time.perf_counter() - started
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE and len(answer.steps) == steps, (answer.status, events[-1])
    timings = list(model.server.timings)
    gaps = [timings[i + 1][0] - timings[i][1] - tool_durations[i] for i in range(steps)]
    model_s = sum(end - begin for begin, end in timings)
    return {"step_gaps_ms": [g * 1000 for g in gaps],
            "app_ms": (wall - model_s - sum(tool_durations)) * 1000, "wall_ms": wall * 1000}


def measure(runs: int) -> dict:
    from django.conf import settings
    from django.contrib.auth.models import User

    from assistant.chat.answering import get_chat_client
    from assistant.chat.assistants import assistant_default
    from tests.chat.scripted_llm import ScriptedModel

    durations: list[float] = []
    noop_tool(durations)
    model = ScriptedModel([])
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_TOOLS = model.base_url, "scripted", True
    get_chat_client.cache_clear()
    assistant = assistant_default()
    assistant.tools = ["noop"]
    assistant.save()
    user = User.objects.create_user("bench-agent")
    try:
        one_answer(model, user, 1, durations)  # warm-up: the embedding model, connections, caches
        results = {1: [], 3: []}
        for _ in range(runs):
            for steps in (1, 3):
                results[steps].append(one_answer(model, user, steps, durations))
    finally:
        model.close()
    gaps = [g for r in results[1] + results[3] for g in r["step_gaps_ms"]]
    app = {steps: [r["app_ms"] for r in results[steps]] for steps in (1, 3)}
    extra = [three - one for one, three in zip(app[1], app[3])]
    return {
        "app_ms_per_tool_step": percentiles(gaps),
        "target_ms": TARGET_MS,
        "meets_target": statistics.median(gaps) < TARGET_MS,
        "answer_app_ms": {"1_step": percentiles(app[1]), "3_steps": percentiles(app[3])},
        "answer_wall_ms": {f"{steps}_step{'s' if steps > 1 else ''}": percentiles([r["wall_ms"] for r in results[steps]])
                           for steps in (1, 3)},
        "three_vs_one_step_app_ms": percentiles(extra),
        "per_extra_step_app_ms": round(statistics.median(extra) / 2, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_agent")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    create_database(args.database_url)
    os.environ.update(bench_environment(args.database_url))
    import django

    django.setup()
    try:
        results = measure(args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.database_url)
    report = {"benchmark": "agent_loop", "runs": args.runs, **results,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
