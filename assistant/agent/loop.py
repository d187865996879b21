"""The agent loop: the model → its tool calls → their results as `tool` messages → the model,
until it answers or a limit is reached (assistant/agent/limits.py); then it is asked once more,
without tools, to answer from what it has.

The loop knows no tool (it reads the registry) and no chat model: the caller gives it the model
client, the first messages, the tools it may offer, who it acts for (a ToolContext) and how to
ask whether the user pressed Stop. It yields ("text", str) as the model writes and ("step",
dict) when a call starts and when it ends; `steps` keeps every call for the stored message.

Bad model output never escapes as a crash: an unknown tool, arguments that are not JSON or fail
the tool's schema, a tool that raises or runs too long, each goes back to the model as the
call's result (an error it can correct), counts as a step and is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from assistant.agent.limits import AgentLimits, MIN_RESULT_TOKENS, cut_result, final_note, messages_tokens
from assistant.agent.registry import Tool, ToolContext, ToolError, tool_named, tool_schemas
from assistant.agent.runner import QueryGuard, run_tool
from assistant.agent.steps import CANCELLED, DONE, ERROR, Step, label_of, merge_tool_calls, shown_arguments

logger = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 0.3


@dataclass
class _Call:
    """One call of a round, checked: `error` is set when it cannot run."""

    step: Step
    tool: Tool | None = None
    arguments: object = None
    error: str = ""
    guard: QueryGuard | None = None  # while it runs in a thread


@dataclass
class _Turn:
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict] = field(default_factory=dict)


class AgentRun:
    """One answer's loop. Iterate `events()`; afterwards (or after closing it) `steps`, `stopped`
    and `limit` say what happened."""

    def __init__(
        self, *, client, messages: list[dict], tools: list[str], context: ToolContext, limits: AgentLimits,
        params: dict, should_stop: Callable[[], Awaitable[bool]] | None = None,
        check_seconds: float = STOP_CHECK_SECONDS,
    ):
        self.client, self.context, self.limits, self.params = client, context, limits, params
        self.messages = list(messages)
        # Only tools that exist and the caller allows: a call to any other is refused as unknown.
        self.tools = {name: tool for name in dict.fromkeys(tools) if (tool := tool_named(name)) is not None}
        self.schemas = tool_schemas(list(self.tools))
        self.steps: list[Step] = []
        self.stopped = False
        self.limit = ""  # "steps", "time" or "context": the limit that ended tool use, if one did
        self.rounds = 0
        self._should_stop, self._check_seconds = should_stop, check_seconds
        self._last_check = time.monotonic()
        self._started = time.monotonic()
        self._used = messages_tokens(self.messages)
        self._wrote = False

    def step_dicts(self) -> list[dict]:
        return [step.as_dict() for step in self.steps]

    async def events(self) -> AsyncIterator[tuple[str, object]]:
        self._started = time.monotonic()
        while True:
            offer = self._tools_offered()
            if not offer and self.limit and self.rounds:
                self._append(final_note(self.limit))
            turn = _Turn()
            async with aclosing(self._model_turn(offer, turn)) as texts:
                async for text in texts:
                    yield "text", text
            if self.stopped:
                return
            if not (offer and turn.calls):  # an answer (calls made when none were offered are ignored)
                if self.limit and self.rounds and not self._wrote:
                    yield "text", _("I could not finish this answer within the limits set for using tools.")
                return
            self.rounds += 1
            calls = [turn.calls[i] for i in sorted(turn.calls)]
            self._append({"role": "assistant", "content": "".join(turn.text), "tool_calls": calls})
            async with aclosing(self._round(calls)) as steps:
                async for step in steps:
                    yield "step", step
            if self.stopped:
                return

    def _append(self, message: dict) -> None:
        self.messages.append(message)
        self._used += messages_tokens([message])

    def _tools_offered(self) -> bool:
        """Whether this turn offers tools; when a limit says no, `limit` names it."""
        if not self.schemas or self.limit:
            return False
        if self.rounds >= self.limits.max_steps:
            self.limit = "steps"
        elif time.monotonic() - self._started >= self.limits.time_budget:
            self.limit = "time"
        elif self._room() < MIN_RESULT_TOKENS:
            self.limit = "context"
        return not self.limit

    def _room(self) -> int:
        if self.limits.context_tokens is None:
            return self.limits.result_tokens
        return self.limits.context_tokens - self._used

    async def _stop_requested(self, *, force: bool = False) -> bool:
        now = time.monotonic()
        if self._should_stop is None or (not force and now - self._last_check < self._check_seconds):
            return False
        self._last_check = now
        self.stopped = self.stopped or await self._should_stop()
        return self.stopped

    async def _model_turn(self, offer: bool, turn: _Turn) -> AsyncIterator[str]:
        params = dict(self.params)
        if offer:  # never an empty `tools` array: vLLM rejects it
            params.update(tools=self.schemas, tool_choice="auto")
        stream = self.client.stream(self.messages, **params)
        async with aclosing(stream):  # closing the stream cancels generation on the server
            async for delta in stream:
                if delta.tool_calls:
                    merge_tool_calls(turn.calls, delta.tool_calls)
                if delta.text:
                    if self._wrote and not turn.text:
                        yield "\n\n"  # the text of an earlier round ends its paragraph
                    turn.text.append(delta.text)
                    self._wrote = True
                    yield delta.text
                if await self._stop_requested():
                    return

    def _check(self, call: dict) -> _Call:
        """A call of the model made ready to run, or with the error the model gets back."""
        function = call.get("function") or {}
        name, raw = function.get("name", ""), function.get("arguments", "")
        if not call.get("id") or any(step.id == call["id"] for step in self.steps):
            # None given, or reused: each step has its own. Nine letters and digits, the only ids
            # Mistral's templates accept.
            call["id"] = f"call{len(self.steps) + 1:05d}"
        tool = self.tools.get(name)
        checked = _Call(Step(id=call["id"], step=self.rounds, tool=name, arguments=shown_arguments(raw), label=""))
        if tool is None:
            offered = ", ".join(self.tools) or "none"
            checked.error = f"There is no tool named {name!r}. The tools you may call are: {offered}."
        else:
            checked.tool = tool
            try:
                checked.arguments = tool.parse(raw)
            except ToolError as exc:
                checked.error = str(exc)
        checked.step.label = label_of(tool, name, checked.arguments)
        self.steps.append(checked.step)
        return checked

    async def _round(self, calls: list[dict]) -> AsyncIterator[dict]:
        """Run one round's calls (those that may, together), yielding each step as it starts and
        ends; the results go into the messages in the calls' order."""
        checked = [self._check(call) for call in calls]
        results: dict[str, str] = {}
        share = max(MIN_RESULT_TOKENS // 2, min(self.limits.result_tokens, self._room() // max(1, len(calls))))
        self.context.result_tokens = share
        failed = [item for item in checked if item.error]
        together = [item for item in checked if not item.error and item.tool.concurrent]
        alone = [item for item in checked if not item.error and not item.tool.concurrent]
        try:
            for item in failed:
                logger.info("agent: %s call refused: %s", item.step.tool, item.error)
                results[item.step.id] = f"Error: {item.error}"
                yield item.step.as_dict()
                yield item.step.finish(ERROR, error=item.error)
            for batch in [together] + [[item] for item in alone]:
                if batch and not self.stopped:
                    async for step in self._run_batch(batch, results, share):
                        yield step
            for item in checked:  # left when the user stopped the answer
                if item.step.duration_ms is None:
                    yield item.step.finish(CANCELLED)
        finally:  # stopped, or the reader went away: nothing runs on, nothing stays "running"
            for item in checked:
                if item.step.duration_ms is None:
                    item.step.finish(CANCELLED)
                results.setdefault(item.step.id, "Error: the user stopped this answer.")
                self._append({"role": "tool", "tool_call_id": item.step.id, "content": results[item.step.id]})

    async def _run_batch(self, batch: list[_Call], results: dict[str, str], share: int) -> AsyncIterator[dict]:
        deadline_of_answer = self._started + self.limits.time_budget
        running: dict[asyncio.Task, tuple[_Call, float]] = {}
        for item in batch:
            item.step.started = time.monotonic()
            item.guard = QueryGuard(self.limits.tool_timeout)
            task = asyncio.ensure_future(run_tool(item.tool, self.context, item.arguments, item.guard))
            running[task] = (item, min(item.step.started + self.limits.tool_timeout, deadline_of_answer))
        try:
            for item, _deadline in list(running.values()):
                yield item.step.as_dict()  # it runs now
            while running:
                nearest = min(deadline for _, deadline in running.values())
                wait = max(0.0, min(self._check_seconds, nearest - time.monotonic()))
                done, _pending = await asyncio.wait(running, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    item, _deadline = running.pop(task)
                    yield self._finished(item, task, results, share)
                now = time.monotonic()
                for task, (item, deadline) in list(running.items()):
                    if now >= deadline:
                        task.cancel()
                        item.guard.abandon()  # its query is cancelled now, not when the task next runs
                        del running[task]
                        yield self._timed_out(item, results)
                if running and await self._stop_requested():
                    return
        finally:
            for task, (item, _deadline) in running.items():
                task.cancel()
                item.guard.abandon()

    def _finished(self, item: _Call, task: asyncio.Task, results: dict[str, str], share: int) -> dict:
        step = item.step
        try:
            result = task.result()
        except ToolError as exc:
            logger.info("agent: %s failed: %s", step.tool, exc)
            results[step.id] = f"Error: {exc}"
            return step.finish(ERROR, error=str(exc))
        except Exception:  # a bug in a tool: logged in full, the model told briefly
            logger.exception("agent: tool %s raised", step.tool)
            error = f"The tool {step.tool} failed unexpectedly. Try other arguments, or answer from what you have."
            results[step.id] = f"Error: {error}"
            return step.finish(ERROR, error=error)
        results[step.id], _cut = cut_result(str(result.content or ""), share)
        return step.finish(DONE, summary=result.summary, sources=result.sources)

    def _timed_out(self, item: _Call, results: dict[str, str]) -> dict:
        step = item.step
        seconds = time.monotonic() - step.started
        logger.warning("agent: tool %s stopped after %.1f s", step.tool, seconds)
        error = (
            f"The tool {step.tool} did not finish within {seconds:.0f} seconds and was stopped. "
            "Try a narrower request, or answer from what you have."
        )
        results[step.id] = f"Error: {error}"
        return step.finish(ERROR, error=error)
