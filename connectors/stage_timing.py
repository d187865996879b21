"""Where a request's time goes before the model's first token: named stages on a monotonic clock.

A trace is opened per request (assistant.middleware.StageTimingMiddleware) or per answer written
by a worker, and kept in a context variable, so the ORM threads of `sync_to_async` (which copy the
context) add to the same trace. `lap(name)` closes the stage that ran since the previous lap: laps
follow the request's own path one after the other and add up to its total. Work beside that path
(the full-text query on the search's side thread) is timed on its own (`run_beside`). The answer
pipeline logs the trace once its first token is out (logger "connectors.stage_timing", DEBUG, one
JSON object a line; LOG_DEBUG_LOGGERS=connectors.stage_timing turns it on), which bench/chat.py
reads. Cheap enough to stay on: a clock read and a dict update per stage, nothing without a trace.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar

logger = logging.getLogger(__name__)


class StageTrace:
    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.cpu_started = self.cpu_last = time.process_time()
        self.laps: dict[str, float] = {}  # stage -> seconds, in the order the stages first ran
        self.cpu_laps: dict[str, float] = {}  # stage -> this process's processor seconds meanwhile
        self.spans: dict[str, float] = {}
        self.logged = False

    def lap(self, name: str) -> None:
        now, cpu = time.monotonic(), time.process_time()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.cpu_laps[name] = self.cpu_laps.get(name, 0.0) + cpu - self.cpu_last
        self.last, self.cpu_last = now, cpu

    def span_add(self, name: str, seconds: float) -> None:
        self.spans[name] = self.spans.get(name, 0.0) + seconds

    def report(self) -> dict:
        """Milliseconds of each stage; `start` and `end` on the machine's monotonic clock (the
        clock time.monotonic() reads in every process), so a benchmark can place them among its own
        timestamps; `cpu_ms`: this process's processor time meanwhile (every thread: the stage's
        own where the process serves one request at a time, as in a benchmark)."""
        return {
            "start": round(self.started, 6),
            "end": round(self.last, 6),
            "total_ms": round((self.last - self.started) * 1000, 2),
            "cpu_ms": round((self.cpu_last - self.cpu_started) * 1000, 2),
            "stages_ms": {name: round(seconds * 1000, 2) for name, seconds in self.laps.items()},
            "stages_cpu_ms": {name: round(seconds * 1000, 2) for name, seconds in self.cpu_laps.items()},
            "beside_ms": {name: round(seconds * 1000, 2) for name, seconds in self.spans.items()},
        }


_current: ContextVar[StageTrace | None] = ContextVar("stage_trace", default=None)


def trace_open() -> StageTrace:
    """A new trace for the request or answer running in this context."""
    trace = StageTrace()
    _current.set(trace)
    return trace


def lap(name: str) -> None:
    """End the stage `name` now (it began at the previous lap or at the trace's start)."""
    trace = _current.get()
    if trace is not None:
        trace.lap(name)


def run_beside(executor, name: str, function, *args, **kwargs):
    """Submit `function` to `executor`, timed as the span `name` of this trace."""
    trace = _current.get()
    if trace is None:
        return executor.submit(function, *args, **kwargs)

    def timed():
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            trace.span_add(name, time.monotonic() - started)

    return executor.submit(timed)


def trace_log(label: str, **fields) -> None:
    """Log the trace once (DEBUG), with `fields` (e.g. the answer's id)."""
    trace = _current.get()
    if trace is None or trace.logged or not logger.isEnabledFor(logging.DEBUG):
        return
    trace.logged = True
    logger.debug("%s %s", label, json.dumps({**fields, **trace.report()}))
