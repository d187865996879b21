"""The app's own stages before the first token, for bench/chat.py: the web process (and the answers
worker) log each answer's trace (connectors/stage_timing.py, LOG_DEBUG_LOGGERS=connectors.stage_timing);
this module reads those lines back, places them among the benchmark's own timestamps (the same
monotonic clock in every process), and sums up each stage's median. It also reads a process's
processor time (every thread, nanoseconds) from /proc, which a busy machine inflates far less
than wall time."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ENV = {"LOG_DEBUG_LOGGERS": "connectors.stage_timing"}


def read_traces(log: Path, label: str = "answer-stages") -> dict[str, dict]:
    """answer id -> its trace, from the lines a process logged."""
    traces = {}
    prefix = label + " "
    if not log.exists():
        return traces
    for line in log.read_text(errors="replace").splitlines():
        at = line.find(prefix)  # a Celery worker's lines begin with its own prefix
        if at >= 0:
            try:
                record = json.loads(line[at + len(prefix):])
            except ValueError:
                continue
            traces[record.get("answer", "").replace("-", "")] = record
    return traces


def stage_ends(trace: dict) -> dict[str, float]:
    """Each stage's end on the monotonic clock (the stages run one after the other from `start`)."""
    at, ends = trace["start"], {}
    for name, millis in trace["stages_ms"].items():
        at += millis / 1000
        ends[name] = at
    return ends


def cpu_seconds(pid: int) -> float:
    """Processor time of every thread of `pid` so far (from /proc/<pid>/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def request_breakdown(trace: dict, *, sent: float, proxy_arrived: float, proxy_first_token: float,
                      client_first_token: float) -> dict[str, float]:
    """The app's own time of one answer in stages (ms), the model's own time taken out: from the
    client sending the request to the trace's start (HTTP, uvicorn, Django's handler), the traced
    stages up to the prompt, the prompt's way to the model server, then from the model's first
    token to the client."""
    ends = stage_ends(trace)
    stages = dict(trace["stages_ms"])
    model_asked = ends.get("prompt", trace["start"])
    model_answered = ends.get("model")
    out = {"client_to_app": (trace["start"] - sent) * 1000}
    for name, millis in stages.items():
        if name == "model":
            out["model_request"] = (proxy_arrived - model_asked) * 1000  # client, connection, request
            if model_answered is not None:
                out["model_first_token_to_app"] = (model_answered - proxy_first_token) * 1000
            continue
        out[name] = millis
    out["app_to_client"] = (client_first_token - trace["end"]) * 1000
    return out


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each stage's median over the rows that have it, in the order stages first appear."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: round(statistics.median([row[name] for row in rows if name in row]), 2) for name in names}


def worker_breakdown(follow: dict, worker: dict, *, sent: float, proxy_arrived: float, proxy_first_token: float,
                     client_first_token: float) -> dict[str, float]:
    """The same for an answer written by the answers worker: the web request that hands it over and
    follows its stream (`follow`), and the worker's own trace (`worker`), placed one after the other."""
    web, written = stage_ends(follow), stage_ends(worker)
    out = {"client_to_app": (follow["start"] - sent) * 1000}
    for name in ("middleware", "message_load", "enqueue"):
        if name in follow["stages_ms"]:
            out[name] = follow["stages_ms"][name]
    handed = web.get("enqueue", web.get("message_load", follow["start"]))
    out["queue_to_worker"] = (worker["start"] - handed) * 1000  # the broker, the worker taking the task
    before_model = [name for name in worker["stages_ms"] if name not in ("model", "first_token_saved",
                                                                          "first_token_write")]
    out.update({f"worker_{name}": worker["stages_ms"][name] for name in before_model})
    out["model_request"] = (proxy_arrived - written.get("prompt", worker["start"])) * 1000
    if "model" in written:
        out["model_first_token_to_worker"] = (written["model"] - proxy_first_token) * 1000
        saved = written.get("first_token_saved", written["model"])
        out["worker_first_token_saved"] = (saved - written["model"]) * 1000
        if "relay_first_token" in web:
            out["relay_to_web"] = (web["relay_first_token"] - saved) * 1000  # the stream entry, the read
    if "first_token_write" in follow["stages_ms"]:
        out["first_token_write"] = follow["stages_ms"]["first_token_write"]
    out["app_to_client"] = (client_first_token - follow["end"]) * 1000
    return out
