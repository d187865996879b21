"""Running one tool call: in a thread when the tool is synchronous (the ORM is), bounded on the
database side, so a call the loop gives up on (timed out, or the user pressed Stop) cannot keep
working for long behind the answer's back.

Python cannot kill a thread, but its database work can be ended: once the call is abandoned
its running query is cancelled at the server and its next query is refused; and every query of
the call runs under a statement timeout no longer than the call's own, in case.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache

from django.db import DatabaseError, connection

from assistant.agent.registry import Tool, ToolContext, ToolResult

#: Threads for synchronous tools, shared by the process's answers. Sized for many calls at once;
#: abandoned calls hold a thread only until their statement timeout.
TOOL_THREADS = 16


class ToolAbandoned(Exception):
    """Raised inside an abandoned call at its next query."""


@lru_cache(maxsize=1)
def _tool_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=TOOL_THREADS, thread_name_prefix="agent-tool")


class QueryGuard:
    """An execute wrapper for one call's thread: sets the statement timeout on the call's first
    query, refuses every query once the call is abandoned, and cancels the one running then."""

    def __init__(self, seconds: float):
        self.timeout_ms = max(1, int(seconds * 1000))
        self.abandoned = threading.Event()
        self.armed = False
        self._lock = threading.Lock()
        self._raw = None  # the thread's driver connection, while the call may use it

    def __call__(self, execute, sql, params, many, context):
        if self.abandoned.is_set():
            raise ToolAbandoned("This tool call was abandoned.")
        if not self.armed:
            self.armed = True
            context["cursor"].cursor.execute(f"SET statement_timeout = {self.timeout_ms}")
            with self._lock:
                self._raw = context["connection"].connection
        return execute(sql, params, many, context)

    def abandon(self) -> None:
        with self._lock:
            if self.abandoned.is_set():
                return  # cancelled once already: a second request could hit its clean-up
            self.abandoned.set()
            if self._raw is not None:
                try:  # the driver's cancel request: safe from another thread
                    self._raw.cancel()
                except Exception:  # noqa: BLE001 - the connection may be gone already
                    pass

    def release(self) -> None:
        """The call is over: its connection is no longer the guard's to cancel."""
        with self._lock:
            self._raw = None


def _run_in_thread(tool: Tool, context: ToolContext, arguments, guard: QueryGuard) -> ToolResult:
    try:
        with connection.execute_wrapper(guard):
            return tool.run(replace(context, cancelled=guard.abandoned), arguments)
    finally:
        guard.release()
        if guard.armed:
            try:  # a pooled connection must not keep the call's timeout
                with connection.cursor() as cursor:
                    cursor.execute("RESET statement_timeout")
            except DatabaseError:
                pass
        if connection.connection is not None:
            connection.close()  # an idle thread keeps no connection open


async def run_tool(tool: Tool, context: ToolContext, arguments, guard: QueryGuard) -> ToolResult:
    """The call's result. Cancelling the awaiting task abandons a thread's call (see `QueryGuard`)."""
    if inspect.iscoroutinefunction(tool.run):
        return await tool.run(context, arguments)
    loop = asyncio.get_running_loop()
    try:
        # In the caller's context: the user's language for the result's summary, among others.
        run = contextvars.copy_context().run
        return await loop.run_in_executor(_tool_threads(), run, _run_in_thread, tool, context, arguments, guard)
    except asyncio.CancelledError:
        guard.abandon()
        raise
