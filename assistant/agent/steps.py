"""A tool call as the model asks for it (streamed in pieces) and as the user sees it: a step.

The step's dict is the contract with the page, the JSON API and the stored Message.steps:
{"id", "step", "tool", "arguments", "status", "label", "summary", "sources", "error", "duration_ms"}.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

RUNNING, DONE, ERROR, CANCELLED = "running", "done", "error", "cancelled"


def merge_tool_calls(calls: dict[int, dict], fragments: list[dict]) -> None:
    """Streamed function calls arrive in pieces keyed by index; join their names and arguments."""
    for fragment in fragments:
        if not isinstance(fragment, dict):
            continue
        index = fragment.get("index", len(calls))
        call = calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        if fragment.get("id"):
            call["id"] = str(fragment["id"])
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # some servers send the object itself
            call["function"]["arguments"] += json.dumps(arguments)
        elif arguments:
            call["function"]["arguments"] += str(arguments)


def shown_arguments(raw: str) -> dict:
    """The arguments as stored and shown: the parsed object, or {"raw": text} when not one."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"raw": raw}


def default_label(tool_name: str) -> str:
    return _("Using %(tool)s…") % {"tool": tool_name}


def label_of(tool, tool_name: str, arguments) -> str:
    """What the call does, in the user's words: the tool's own `label(arguments)` where it has one
    (a label that fails to build must not fail the answer)."""
    label = getattr(tool, "label", None)
    if tool is not None and arguments is not None and callable(label):
        try:
            text = label(arguments)
        except Exception:  # noqa: BLE001 - a label is decoration
            text = ""
        if isinstance(text, str) and text.strip():
            return text
    return default_label(tool_name)


@dataclass
class Step:
    id: str
    step: int
    tool: str
    arguments: dict
    label: str
    status: str = RUNNING
    summary: str = ""
    sources: list = field(default_factory=list)
    error: str = ""
    duration_ms: int | None = None
    started: float = field(default_factory=time.monotonic)

    def finish(self, status: str, *, summary: str = "", sources=(), error: str = "") -> dict:
        self.status, self.summary, self.error = status, summary, error
        self.sources = [dict(s) for s in sources or () if isinstance(s, dict)]
        self.duration_ms = int((time.monotonic() - self.started) * 1000)
        return self.as_dict()

    def as_dict(self) -> dict:
        return {
            "id": self.id, "step": self.step, "tool": self.tool, "arguments": self.arguments,
            "status": self.status, "label": self.label, "summary": self.summary, "sources": self.sources,
            "error": self.error, "duration_ms": self.duration_ms,
        }
