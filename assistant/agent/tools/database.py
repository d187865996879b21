"""describe_database and query_database: questions in SQL over the company databases whose admins
allowed them, governed (connectors/sql_questions.py): only the datasets, columns and rows the user
may see, one read-only SELECT, a timeout and a row cap. Off unless an admin gives an assistant
these tools."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _, ngettext
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts.ratelimit import sql_query_allowed
from assistant.agent.registry import Tool, ToolContext, ToolError, ToolResult, argument, register
from assistant.agent.tools.common import allowed_connector_ids, cut_to_tokens, reader_groups, tokens_of
from assistant.agent.tools.query_result import ChartArguments, chart_checked, query_source
from connectors.sql_questions import SqlQuestionError, database_answer, database_describe

#: Characters of one cell given to the model (long text is cut with …).
CELL_CHARS = 200


class DescribeArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=200, description="The database source's name, as list_sources shows it.")


class QueryArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=200, description="The database source's name.")
    sql: str = Field(
        min_length=1, max_length=20_000,
        description="One read-only SELECT over the datasets describe_database lists, by their names "
        "(no schema names). CTEs, joins, aggregates and window functions are fine.",
    )
    chart: ChartArguments | None = Field(
        default=None,
        description="Optional: a chart of the result, shown beside its table, when a picture says it better "
        "than numbers (a trend, a comparison, shares). x and y name columns of the result.",
    )


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        text = value.isoformat()
    elif isinstance(value, decimal.Decimal):
        text = format(value, "f")
    elif isinstance(value, (bytes, memoryview)):
        text = f"<{len(bytes(value))} bytes>"
    else:
        text = str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    head = "| " + " | ".join(_cell(c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    return "\n".join([head, rule, *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)])


@register
class DescribeDatabase(Tool):
    name = "describe_database"
    description = (
        "Describe the datasets of a company database that the user may query in SQL: each dataset's name "
        "(use it as the table name), columns with types, a few sample rows, the row count and what it holds. "
        "Call it before query_database."
    )
    Arguments = DescribeArguments

    def label(self, arguments) -> str:
        return _("Looking at the database “%(source)s”…") % {"source": argument(arguments, "source", "")}

    def run(self, context: ToolContext, arguments: DescribeArguments) -> ToolResult:
        groups = reader_groups(context)
        try:
            datasets = database_describe(groups=groups, connector_name=arguments.source,
                                         connector_ids=allowed_connector_ids(context))
        except SqlQuestionError as exc:
            raise ToolError(str(exc)) from None
        if not datasets:
            return ToolResult(content=_("This user may not query any dataset of %(source)s.") % {"source": arguments.source},
                              summary=_("No datasets"))
        parts = []
        for ds in datasets:
            lines = [f"## {ds.name}" + (f" — {ds.description}" if ds.description else "")]
            lines.append(_("rows: %(count)s") % {"count": "?" if ds.row_count is None else ds.row_count})
            lines.append(_("columns: %(columns)s") % {"columns": ", ".join(f"{n} ({t})" for n, t in ds.columns)})
            if ds.samples:
                lines.append(markdown_table([n for n, _t in ds.columns], ds.samples))
            parts.append("\n".join(lines))
        content = cut_to_tokens("\n\n".join(parts), context.result_tokens)
        summary = ngettext("%(count)d dataset", "%(count)d datasets", len(datasets)) % {"count": len(datasets)}
        return ToolResult(content=content, summary=summary, truncated=tokens_of("\n\n".join(parts)) > context.result_tokens)


@register
class QueryDatabase(Tool):
    name = "query_database"
    description = (
        "Run one read-only SQL SELECT on a company database, over the datasets describe_database lists. "
        "Returns the rows (capped) as a numbered source: cite it as [n] like a passage. The user sees the SQL, "
        "the rows as a table and, if you ask for one with 'chart', a chart. Aggregate in SQL rather than reading "
        "many rows."
    )
    Arguments = QueryArguments
    concurrent = True

    def label(self, arguments) -> str:
        return _("Querying the database “%(source)s”…") % {"source": argument(arguments, "source", "")}

    def run(self, context: ToolContext, arguments: QueryArguments) -> ToolResult:
        groups = reader_groups(context)
        verdict = sql_query_allowed(user_id=context.user_id)
        if not verdict.allowed:
            raise ToolError(_("Too many database queries: wait %(seconds)d s before the next one.")
                            % {"seconds": verdict.retry_after})
        try:
            answer = database_answer(
                user=_user(context), groups=groups, connector_name=arguments.source, sql=arguments.sql,
                connector_ids=allowed_connector_ids(context), cancelled=context.cancelled,
            )
        except SqlQuestionError as exc:
            raise ToolError(str(exc)) from None
        result = answer.result
        chart = chart_checked(arguments.chart, result.columns, result.rows)
        table = cut_to_tokens(markdown_table(result.columns, result.rows), context.result_tokens)
        shown = max(0, min(table.count("\n") - 1, len(result.rows)))
        [source] = context.book.add([query_source(answer, sql=arguments.sql, shown=shown, chart=chart, table=table)])
        notes = [_("Cite this result as [%(n)d].") % {"n": source.n}]
        truncated = result.truncated or shown < len(result.rows)
        if truncated:
            notes.append(_("Only the first %(shown)d rows are shown: aggregate, filter or add LIMIT to see the rest.")
                         % {"shown": shown})
        if chart:
            notes.append(_("The user sees a %(type)s chart of it beside the table.") % {"type": chart["type"]})
        content = "\n\n".join([f"[{source.n}] {source.title}", table, *notes])
        summary = ngettext("%(count)d row", "%(count)d rows", len(result.rows)) % {"count": len(result.rows)}
        step_source = {key: source.record[key] for key in ("kind", "query_id", "title", "connector", "connector_id",
                                                           "access")}
        return ToolResult(content=content, summary=summary, sources=[step_source], truncated=truncated)


def _user(context: ToolContext):
    return get_user_model().objects.filter(pk=context.user_id).first()
