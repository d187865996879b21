"""The chat page's own stream, with answers written by the web request (ANSWER_RUNNER=request) and
by the answers worker (ANSWER_RUNNER=worker), measured in the same run by bench/chat.py: the app's
own time to the first token (before the model is asked, plus from the model's first token to the
browser), the model's own time taken out through the recording proxy; the processor time of the
app's processes meanwhile (the web process, and the worker where it writes the answer); and where
that time goes, stage by stage, from the processes' traces (bench/stage_trace.py). Target: the
worker path adds no more than 20 ms at the median."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.stage_trace import cpu_seconds, medians, read_traces, request_breakdown, worker_breakdown
from tests.e2e.sse import login


@dataclass
class Runner:
    """A web process answering the chat page, its processes (for processor time) and their logs."""

    url: str
    pids: list[int]
    web_log: Path
    worker_log: Path | None = None  # where the answers worker writes the answer
    rows: list[dict] = field(default_factory=list)

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)


def _page_first_token(client: httpx.Client, runner: Runner, question: str) -> dict:
    """The page's stream of one new answer, read to its end; times on the monotonic clock."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    created = client.post("/chat/api/conversations/", json={}, headers=headers)
    created.raise_for_status()
    submitted = client.post(f"/chat/api/c/{created.json()['id']}/messages/", json={"content": question},
                            headers=headers)
    submitted.raise_for_status()
    stream_url = submitted.json()["stream_url"]
    cpu = [runner.cpu()]
    started, first, event = time.monotonic(), None, None
    with client.stream("GET", stream_url, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "token" and first is None:
                first = time.monotonic()
                cpu.append(runner.cpu())
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"the answer failed: {line}")
    answer = stream_url.rstrip("/").split("/")[-2].replace("-", "")
    return {"answer": answer, "started": started, "first": first, "cpu": cpu[-1] - cpu[0]}


def _summary(runner: Runner) -> dict:
    rows = runner.rows
    web = read_traces(runner.web_log, "answer-follow" if runner.worker_log else "answer-stages")
    written = read_traces(runner.worker_log) if runner.worker_log else {}
    breakdown = []
    for row in rows:
        if row["answer"] not in web:
            continue
        if runner.worker_log is None:
            breakdown.append(request_breakdown(web[row["answer"]], **row["times"]))
        elif row["answer"] in written:
            breakdown.append(worker_breakdown(web[row["answer"]], written[row["answer"]], **row["times"]))
    own = [r["own"] for r in rows]
    return {
        "app_own_ms_median": round(statistics.median(own) * 1000, 1) if own else None,
        "app_own_ms_samples": [round(x * 1000, 1) for x in own],
        "ttft_ms_median": round(statistics.median(r["ttft"] for r in rows) * 1000, 1) if rows else None,
        # Processor time of the app's processes (web; web and worker) from the stream's request
        # to its first token: less inflated by a busy machine than wall time.
        "cpu_ms_median": round(statistics.median(r["cpu"] for r in rows) * 1000, 1) if rows else None,
        "cpu_ms_samples": [round(r["cpu"] * 1000, 1) for r in rows],
        "traced_answers": len(breakdown),
        "stages_ms_median": medians(breakdown),
        "web_stages_cpu_ms_median": medians([web[r["answer"]].get("stages_cpu_ms", {}) for r in rows
                                             if r["answer"] in web]),
        **({"worker_stages_cpu_ms_median": medians([written[r["answer"]].get("stages_cpu_ms", {}) for r in rows
                                                    if r["answer"] in written])} if runner.worker_log else {}),
    }


def measure_runners(runners: dict[str, Runner], *, username: str, password: str, proxy, questions: list[str],
                    runs: int, reset_cache) -> dict:
    """`runners`: "request" and "worker". Alternates them, `runs` answers each."""
    clients = {name: login(runner.url, username, password) for name, runner in runners.items()}
    for i in range(runs):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))
        for name in order:
            reset_cache()
            recorded = len(proxy.records)
            got = _page_first_token(clients[name], runners[name], questions[i % len(questions)])
            record = proxy.records[recorded]  # the answer's request to the model (its title comes after)
            if got["first"] is None or record["first_token_out"] is None:
                continue
            runners[name].rows.append({
                "answer": got["answer"], "ttft": got["first"] - got["started"], "cpu": got["cpu"],
                "own": (record["arrived"] - got["started"]) + (got["first"] - record["first_token_out"]),
                "times": {"sent": got["started"], "proxy_arrived": record["arrived"],
                          "proxy_first_token": record["first_token_out"], "client_first_token": got["first"]},
            })
    for client in clients.values():
        client.close()
    summaries = {name: _summary(runner) for name, runner in runners.items()}
    request, worker = summaries["request"]["app_own_ms_median"], summaries["worker"]["app_own_ms_median"]
    added = worker - request if request is not None and worker is not None else None
    cpu_request, cpu_worker = summaries["request"]["cpu_ms_median"], summaries["worker"]["cpu_ms_median"]
    return {
        "runs": runs,
        **{f"{name}_app_own_ms_median": summary["app_own_ms_median"] for name, summary in summaries.items()},
        "worker_added_ms": round(added, 1) if added is not None else None,
        "worker_added_cpu_ms": round(cpu_worker - cpu_request, 1) if None not in (cpu_request, cpu_worker) else None,
        "target_added_ms": 20,
        "meets_target": added is not None and added <= 20,
        **summaries,
    }
