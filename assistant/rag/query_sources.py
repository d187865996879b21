"""A query result as a numbered source, like a passage: `[n]` cites it, it is listed under the
answer with its SQL, its first rows and its chart, and a reader downloads the full result as CSV.

The record stored with the message (Message.sources, kind "query"):
{"kind": "query", "query_id", "title", "connector", "connector_id", "sql" (the query the model
wrote, which a download runs again, governed as the reader), "columns", "rows" (the first rows,
what the model saw, as JSON values), "row_count" (rows the query returned, up to the cap),
"truncated" (it had more), "chart" (None or {"type", "x", "y", "title"}), "datasets" (the datasets
read), "access" (connectors.sql_questions.query_access: what it is re-checked against; never shown)}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse

from assistant.rag.retrieval import Passage

QUERY = "query"
#: The keys of a stored query record that a reader who may see it is shown.
SHOWN_KEYS = ("n", "kind", "query_id", "title", "connector", "sql", "columns", "rows", "row_count", "truncated",
              "chart", "cited")


@dataclass(frozen=True)
class QueryPassage(Passage):
    """A query result in the answer's numbering (assistant.agent.registry.PassageBook). Its `text`
    (the SQL and the rows as the model read them) is what citations are checked against."""

    record: dict = field(default_factory=dict, compare=False)

    @property
    def document_url(self) -> str:
        """Where its `[n]` chip leads: the result under the answer."""
        return f"#query-{self.document_id}"


def query_passage(record: dict, text: str) -> QueryPassage:
    """The passage of a query `record` (numbered 0 until a PassageBook numbers it)."""
    return QueryPassage(
        n=0, chunk_id=0, document_id=str(record["query_id"]), title=str(record["title"]), location="", url="",
        connector=str(record["connector"]), text=text, start_char=0, end_char=len(text), kind=QUERY,
        record=record,
    )


def is_query(entry: dict) -> bool:
    return isinstance(entry, dict) and entry.get("kind") == QUERY


def query_entry(p: QueryPassage, cited: bool) -> dict:
    """Its entry in Message.sources: the record, numbered, marked cited or not."""
    return {**p.record, "n": p.n, "cited": cited}


def download_url(message_id, query_id) -> str:
    return reverse("chat:query_csv", args=[message_id, query_id])


def query_shown(entry: dict, message_id) -> dict:
    """What a reader who may see a stored query is shown (never its access record); its `url` is
    the CSV download."""
    shown = {key: entry[key] for key in SHOWN_KEYS if key in entry}
    return {**shown, "kind": QUERY, "url": download_url(message_id, entry.get("query_id"))}


def step_streamed(step: dict) -> dict:
    """A step as it streams to the asking reader: a query source in it without what it is
    re-checked against (the datasets' ACLs, the reader's groups)."""
    sources = step.get("sources") or []
    if not any(is_query(s) for s in sources):
        return step
    return {**step, "sources": [{k: s[k] for k in SHOWN_KEYS if k in s} if is_query(s) else s for s in sources]}
