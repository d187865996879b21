"""read_document: a whole document, or one part of a long one, under the user's ACL."""

from __future__ import annotations

import uuid

from django.utils.translation import gettext as _, ngettext
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.agent.registry import Tool, ToolContext, ToolError, ToolResult, register
from assistant.agent.tools.common import cut_end, documents_readable, reader_groups, source_entry
from assistant.rag.context import Segment
from assistant.rag.retrieval import Passage
from connectors.index_version import live_index
from connectors.models import Chunk, Document

#: Tokens kept back from the budget for the header and the note on other parts.
FRAME_TOKENS = 80
#: A part is never smaller than this, however small the result budget.
MIN_PART_TOKENS = 100


class ReadArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: str = Field(
        min_length=1, max_length=100, description="The document id, as shown in search_knowledge results."
    )
    part: int | None = Field(
        default=None, ge=1, le=100_000,
        description="Which part of a long document to read (1 = the beginning). Omit for the first part.",
    )

    @field_validator("document")
    @classmethod
    def _document_id(cls, value: str) -> str:
        value = value.strip().strip("[]")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("give the document id shown in search results, e.g. 3f2b9c1e-…") from None


def part_bounds(text: str, part_tokens: int) -> list[tuple[int, int]]:
    """(start, end) of each part of `text`: consecutive windows of at most `part_tokens`, each
    ended at a line or sentence break where one is near. The same text and budget give the same parts."""
    bounds, start, last = [], 0, len(text.rstrip())
    while True:
        end = cut_end(text, part_tokens, start)
        if end >= last or end <= start:
            bounds.append((start, len(text)))
            return bounds
        bounds.append((start, end))
        start = end
        while start < len(text) and text[start].isspace():
            start += 1


def _window_passage(document: Document, start: int, end: int) -> Passage:
    """The part as a passage the book can number and the answer cite (its chunks as segments)."""
    live = live_index().number
    chunks = list(
        Chunk.objects.filter(document=document, index_version=live, end_char__gt=start, start_char__lt=end)
        .order_by("ordinal").values_list("id", "start_char", "end_char")
    )
    segments = tuple(Segment(cid, max(s, start), min(e, end)) for cid, s, e in chunks)
    return Passage(
        n=0, chunk_id=chunks[0][0] if chunks else 0, document_id=str(document.id), title=document.title,
        location=document.location, url=document.url, connector=document.connector.name,
        text=document.text[start:end], start_char=start, end_char=end, segments=segments,
    )


@register
class ReadDocument(Tool):
    name = "read_document"
    description = (
        "Read a document the user may read, whole when it fits, else in parts: give the document id from "
        "search_knowledge results, and 'part' (2, 3, …) for the following parts of a long one. The text comes "
        "numbered [n] like search results, to cite the same way."
    )
    Arguments = ReadArguments
    default_on = True
    mcp = True

    def label(self, arguments) -> str:
        return _("Reading a document…")

    def run(self, context: ToolContext, arguments: ReadArguments) -> ToolResult:
        groups = reader_groups(context)
        try:
            document = documents_readable(context, groups).select_related("connector").get(id=arguments.document)
        except Document.DoesNotExist:
            raise ToolError(
                _("No document %(id)s among those this user may read. Use a document id from search_knowledge results.")
                % {"id": arguments.document}
            ) from None
        bounds = part_bounds(document.text, max(context.result_tokens - FRAME_TOKENS, MIN_PART_TOKENS))
        part = arguments.part or 1
        if part > len(bounds):
            raise ToolError(
                ngettext(
                    "“%(title)s” has %(count)d part; ask for part 1.",
                    "“%(title)s” has %(count)d parts; ask for a part from 1 to %(count)d.",
                    len(bounds),
                ) % {"title": document.title, "count": len(bounds)}
            )
        start, end = bounds[part - 1]
        [passage] = context.book.add([_window_passage(document, start, end)])
        header = f"[{passage.n}] {document.title} ({passage.connector}, document {passage.document_id})"
        if len(bounds) > 1:
            header += " — " + _("part %(part)d of %(count)d") % {"part": part, "count": len(bounds)}
        lines = [header, passage.text]
        if part < len(bounds):
            lines.append(
                "(" + _("Call read_document with part=%(next)d for what follows.") % {"next": part + 1} + ")"
            )
        summary = (
            _("Read “%(title)s”") % {"title": document.title}
            if len(bounds) == 1
            else _("Read “%(title)s”, part %(part)d of %(count)d")
            % {"title": document.title, "part": part, "count": len(bounds)}
        )
        return ToolResult(
            content="\n".join(lines), summary=summary, sources=[source_entry(passage)], truncated=part < len(bounds)
        )

