"""Tools for the agent loop's tests, registered only while a test uses them (`test_tools`).

`lookup_note` is a small but real search: the hybrid search under the user's ACL, its passages
numbered in the answer's PassageBook, so citations across steps can be checked end to end.
The others stand for tools that wait for each other, sleep in the database, or break.
"""

from __future__ import annotations

import threading

from django.db import connection
from pydantic import BaseModel, Field

from assistant.agent.registry import Tool, ToolError, ToolResult, register, unregister
from assistant.rag.prompts import format_sources
from assistant.rag.retrieval import embed_query, retrieve


class Query(BaseModel):
    query: str = Field(min_length=1, description="What to look for.")


class Nothing(BaseModel):
    pass


class Seconds(BaseModel):
    seconds: float = 30.0


class LookupNote(Tool):
    name = "lookup_note"
    description = "Search the company's notes."
    Arguments = Query

    def label(self, arguments: Query) -> str:
        return f"Searching “{arguments.query}”…"

    def run(self, context, arguments: Query) -> ToolResult:
        passages = retrieve(embedding=embed_query(arguments.query), query=arguments.query, groups=context.groups,
                            material_tokens=context.result_tokens, filters=context.filters)
        numbered = context.book.add(passages)
        if not numbered:
            raise ToolError("Nothing matched; try other words.")
        return ToolResult(
            content=format_sources(numbered), summary=f"Found {len(numbered)} passages",
            sources=[{"title": p.title, "url": p.document_url, "connector": p.connector,
                      "document_id": str(p.document_id), "kind": p.kind} for p in numbered],
        )


class Meet(Tool):
    """Passes only when another call of it runs at the same time (calls of one round run together)."""

    name = "meet"
    description = "Wait for the other meeting call."
    Arguments = Nothing
    barrier = threading.Barrier(2, timeout=10)

    def run(self, context, arguments) -> ToolResult:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.barrier.reset()
            raise ToolError("Nobody came to the meeting.") from None
        return ToolResult(content="Met.", summary="Met")


class Clock(Tool):
    name = "clock"
    description = "The time."
    Arguments = Nothing

    def run(self, context, arguments) -> ToolResult:
        return ToolResult(content="It is 10:00.", summary="Read the clock")


class Sleepy(Tool):
    """Waits in the database: what a slow query of a real tool would do."""

    name = "sleepy"
    description = "Wait in the database."
    Arguments = Seconds

    def run(self, context, arguments: Seconds) -> ToolResult:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [arguments.seconds])
        return ToolResult(content="Slept.", summary="Slept")


class Boom(Tool):
    name = "boom"
    description = "Always breaks."
    Arguments = Nothing

    def run(self, context, arguments) -> ToolResult:
        raise RuntimeError("kaboom: an internal detail the model must not see")


class LongText(Tool):
    """A result far longer than a result may be (what reading a long document gives)."""

    name = "long_text"
    description = "A long text."
    Arguments = Nothing

    def run(self, context, arguments) -> ToolResult:
        return ToolResult(content=" ".join(f"word{n}" for n in range(5000)), summary="Read a long text")


TEST_TOOLS = (LookupNote, Meet, Clock, Sleepy, Boom, LongText)


def register_test_tools() -> None:
    for tool in TEST_TOOLS:
        register(tool)


def unregister_test_tools() -> None:
    for tool in TEST_TOOLS:
        unregister(tool.name)
