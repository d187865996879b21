"""search_knowledge: the hybrid search over the company's documents, under the user's ACL."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _, ngettext
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.agent.registry import Tool, ToolContext, ToolError, ToolResult, argument, register
from assistant.agent.tools.common import (
    connectors_visible, cut_to_tokens, reader_groups, sources_of, tokens_of,
)
from assistant.rag.retrieval import embed_query, passages_from_hits, search_hits
from connectors.search import NO_FILTERS, SearchFilters

MAX_QUERY_CHARS = 500
MAX_TOP_K = 20
#: Tokens kept back from the budget for the note that says a result was cut.
NOTE_TOKENS = 60


class SearchArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1, max_length=MAX_QUERY_CHARS,
        description="What to look for, in words (a question or keywords), in the language of the documents.",
    )
    sources: list[str] | None = Field(
        default=None, max_length=20,
        description="Only these sources (connector names from list_sources). Omit to search every source.",
    )
    after: dt.date | None = Field(
        default=None, description="Only documents modified on or after this date (YYYY-MM-DD)."
    )
    before: dt.date | None = Field(
        default=None, description="Only documents modified on or before this date (YYYY-MM-DD)."
    )
    top_k: int | None = Field(
        default=None, ge=1, le=MAX_TOP_K, description="How many passages to return at most (default: a handful)."
    )

    @field_validator("query")
    @classmethod
    def _query_has_words(cls, value: str) -> str:
        value = " ".join(value.replace("\x00", " ").split())
        if not value:
            raise ValueError("give some words to search for")
        return value

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [" ".join(name.split()) for name in value if name and name.strip()]
        return list(dict.fromkeys(names)) or None

    @model_validator(mode="after")
    def _dates_in_order(self):
        if self.after and self.before and self.after > self.before:
            raise ValueError("'after' must be on or before 'before'")
        return self


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_default_timezone())


def search_filters(context: ToolContext, groups: list[str], arguments: SearchArguments) -> SearchFilters:
    """The assistant's filters narrowed by the call's sources and dates; unknown (or unseen) names are
    a ToolError that lists none of what the user may not see."""
    base = context.filters or NO_FILTERS
    connector_ids = base.connector_ids
    if arguments.sources:
        visible = dict(connectors_visible(context, groups).values_list("name", "id"))
        unknown = [name for name in arguments.sources if name not in visible]
        if unknown:
            raise ToolError(
                _("Unknown source: %(names)s. Call list_sources for the names you can search, or omit 'sources'.")
                % {"names": ", ".join(f"“{name[:80]}”" for name in unknown)}
            )
        connector_ids = tuple(sorted(str(visible[name]) for name in arguments.sources))
    after = _day_start(arguments.after) if arguments.after else base.modified_after
    before = _day_start(arguments.before + dt.timedelta(days=1)) if arguments.before else base.modified_before
    return replace(base, connector_ids=connector_ids, modified_after=after, modified_before=before)


def render_passages(passages: list, budget: int) -> tuple[list, list[str]]:
    """The passages that fit `budget` tokens (the last one cut if needed) and their text blocks.
    Numbers are placeholders here: the book numbers what is shown."""
    shown, blocks, used = [], [], 0
    for passage in passages:
        header = _header(passage, 999)
        room = budget - used - tokens_of(header) - 2
        if room <= 20:
            break
        text = passage.text
        if tokens_of(text) > room:
            text = cut_to_tokens(text, room)
            passage = replace(passage, text=text, end_char=passage.start_char + len(text))
        shown.append(passage)
        blocks.append(text)
        used += tokens_of(header) + tokens_of(text) + 2
    return shown, blocks


def _header(passage, n: int) -> str:
    return f"[{n}] {passage.title} ({passage.connector}, document {passage.document_id})"


@register
class SearchKnowledge(Tool):
    name = "search_knowledge"
    description = (
        "Search the company's documents the user may read (hybrid: meaning and keywords). Returns numbered "
        "passages; cite them as [n] in the answer. Narrow with 'sources' (names from list_sources) and "
        "'after'/'before' (dates the documents were modified). To read a whole document, call read_document "
        "with its document id."
    )
    Arguments = SearchArguments
    default_on = True
    mcp = True

    def label(self, arguments) -> str:
        query = str(argument(arguments, "query", "") or "").strip()
        if not query:
            return _("Searching the documents…")
        return _("Searching “%(query)s”…") % {"query": query[:80]}

    def run(self, context: ToolContext, arguments: SearchArguments) -> ToolResult:
        groups = reader_groups(context)
        filters = search_filters(context, groups, arguments)
        mode = settings.RAG_SEARCH_MODE
        hits = search_hits(
            embedding=None if mode == "fulltext" else embed_query(arguments.query),
            groups=groups, query=arguments.query, k=arguments.top_k or settings.RAG_TOP_K, mode=mode, filters=filters,
        )
        budget = max(context.result_tokens - NOTE_TOKENS, 50)
        passages = passages_from_hits(hits, budget)
        if not passages:
            return ToolResult(
                content=_("No passage matches this search. Try other words, fewer filters, or list_sources."),
                summary=_("Found nothing"),
            )
        shown, blocks = render_passages(passages, budget)
        left_out = _hits_left_out(hits, shown)
        truncated = left_out > 0 or any(p.text != q.text for p, q in zip(shown, passages))
        numbered = context.book.add(shown)
        parts = [f"{_header(p, p.n)}\n{text}" for p, text in zip(numbered, blocks)]
        if truncated:
            parts.append(_truncation_note(left_out))
        documents = len({p.document_id for p in numbered})
        summary = ngettext(
            "Found %(passages)d passage in %(documents)s", "Found %(passages)d passages in %(documents)s", len(numbered)
        ) % {
            "passages": len(numbered),
            "documents": ngettext("%(count)d document", "%(count)d documents", documents) % {"count": documents},
        }
        return ToolResult(content="\n\n".join(parts), summary=summary, sources=sources_of(numbered), truncated=truncated)


def _hits_left_out(hits: list, shown: list) -> int:
    """Hits whose chunk is in none of the passages shown (the budget had no room for them)."""
    spans = [(p.document_id, p.start_char, p.end_char) for p in shown]
    return sum(
        1 for hit in hits
        if not any(doc == str(hit.chunk.document_id) and start <= hit.chunk.start_char < end for doc, start, end in spans)
    )


def _truncation_note(left_out: int) -> str:
    more = (
        ngettext("%(count)d more passage did not fit.", "%(count)d more passages did not fit.", left_out)
        % {"count": left_out}
        if left_out else _("The last passage was cut to fit.")
    )
    return "(" + more + " " + _(
        "To see more, call read_document with a document id above (and 'part' for long ones), "
        "or search again with a narrower query or fewer top_k."
    ) + ")"
