"""The tool registry: each tool is a module with typed arguments (a pydantic model, whose JSON
schema is what the model is offered) and a `run` that acts as one user, under their ACL.

The agent loop, the MCP server and the admin's per-assistant choice read tools only from here,
so a new tool (the governed SQL tools, say) plugs in by registering itself, without touching them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from django.utils.translation import gettext as _
from pydantic import BaseModel, ValidationError


class ToolError(Exception):
    """A failure the model can correct (a bad argument, a document it may not read): its message
    goes back to the model as the tool's result, never to the user as a crash."""


@dataclass
class PassageBook:
    """The passages an answer has seen, numbered once across every step, so `[n]` citations in
    the final answer point at what the model was shown whichever tool showed it."""

    passages: list = field(default_factory=list)  # assistant.rag.retrieval.Passage (or a query's)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @staticmethod
    def _key(p) -> tuple:
        return (p.kind, str(p.document_id), p.chunk_id, p.start_char, p.end_char)

    def add(self, passages: list) -> list:
        """Number `passages` after those already seen (a chunk seen before keeps its number). Calls of
        one round run at once, in threads: numbering is one at a time."""
        with self._lock:
            known = {self._key(p): p for p in self.passages}
            numbered = []
            for p in passages:
                key = self._key(p)
                if key not in known:
                    known[key] = replace(p, n=len(self.passages) + 1)
                    self.passages.append(known[key])
                numbered.append(known[key])
            return numbered


@dataclass
class ToolContext:
    """Who the tool acts for and within what: every tool checks access with `groups`."""

    user_id: int
    groups: list[str]
    filters: Any = None  # connectors.search.SearchFilters: the assistant's connectors, when it has some
    book: PassageBook = field(default_factory=PassageBook)
    result_tokens: int = 1500  # the cap on one result's size given to the model
    conversation_id: Any = None
    #: Set by the runner for each call: a threading.Event set when the call is abandoned (Stop, its
    #: timeout), for tools whose work runs elsewhere (a company database) to cancel it there.
    cancelled: Any = None


@dataclass
class ToolResult:
    content: str  # what the model reads
    summary: str = ""  # one line for the user: "Found 5 passages in 3 documents"
    sources: list[dict] = field(default_factory=list)  # [{"title", "url", "connector", "document_id"}]
    truncated: bool = False


class Tool:
    """Subclass, set `name`, `description`, `Arguments`, implement `run`, and `register` it."""

    name: ClassVar[str]
    description: ClassVar[str]
    Arguments: ClassVar[type[BaseModel]]
    #: Whether calls may run at the same time as other calls of the same step.
    concurrent: ClassVar[bool] = True
    #: Offered to assistants by default (the admin can change it per assistant).
    default_on: ClassVar[bool] = False
    #: Offered over MCP too (read-only tools that make sense outside a conversation).
    mcp: ClassVar[bool] = False

    def run(self, context: ToolContext, arguments: BaseModel) -> ToolResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self, arguments: BaseModel | dict | None) -> str:
        """What the call does, for the user, while it runs ("Searching “travel policy”…"); localized.
        `arguments`: the parsed model, or the raw dict when they did not parse (never raises)."""
        return _("Using %(tool)s…") % {"tool": self.name}

    @classmethod
    def schema(cls) -> dict:
        """The OpenAI `tools` entry for this tool."""
        parameters = cls.Arguments.model_json_schema()
        parameters.pop("title", None)
        return {"type": "function", "function": {"name": cls.name, "description": cls.description, "parameters": parameters}}

    def parse(self, raw: str | dict | None) -> BaseModel:
        """The model's arguments, checked; a ToolError says what to fix."""
        try:
            data = json.loads(raw or "{}") if isinstance(raw, str) else (raw or {})
        except ValueError as exc:
            raise ToolError(f"The arguments are not valid JSON ({exc.msg}). Send a JSON object.") from None
        if not isinstance(data, dict):
            raise ToolError("The arguments must be a JSON object.")
        try:
            return self.Arguments.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            raise ToolError(f"Invalid arguments for {self.name}: {problems}.") from None


def argument(arguments: BaseModel | dict | None, name: str, default: Any = None) -> Any:
    """One argument from a parsed model or a raw dict (labels are made before, or without, parsing)."""
    if isinstance(arguments, BaseModel):
        return getattr(arguments, name, default)
    if isinstance(arguments, dict):
        return arguments.get(name, default)
    return default


_TOOLS: dict[str, Tool] = {}


def register(tool_class: type[Tool]) -> type[Tool]:
    """Class decorator: make the tool known by its name."""
    _TOOLS[tool_class.name] = tool_class()
    return tool_class


def unregister(name: str) -> None:
    """Forget a tool (tests register tools of their own and remove them after)."""
    _TOOLS.pop(name, None)


def tool_named(name: str) -> Tool | None:
    return _TOOLS.get(name)


def all_tools() -> list[Tool]:
    return sorted(_TOOLS.values(), key=lambda t: t.name)


def mcp_tools() -> list[Tool]:
    """The tools served over MCP (assistant/mcp)."""
    return [t for t in all_tools() if t.mcp]


def default_tool_names() -> list[str]:
    return [t.name for t in all_tools() if t.default_on]


def tool_schemas(names) -> list[dict]:
    """The `tools` array for the model: only the named tools that exist. May be empty; the caller
    must then send no `tools` at all (vLLM rejects an empty array)."""
    return [_TOOLS[n].schema() for n in names if n in _TOOLS]
