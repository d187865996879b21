"""query_database's result as a citable source (assistant/rag/query_sources.py): the chart the
model may ask for, checked against the result's columns, and the record stored with the answer."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.agent.registry import ToolError
from assistant.rag.query_sources import QueryPassage, query_passage

#: Characters of one stored cell (the table under the answer; a download has every character).
CELL_CHARS = 500
#: Integers beyond this lose precision in the browser: they are kept as text.
EXACT_INT = 2**53
MAX_SERIES = 6


class ChartArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["bar", "line", "pie"] = Field(description="bar (compare categories), line (a trend over time) or pie (shares of a whole).")
    x: str = Field(min_length=1, max_length=200, description="The result column of the labels: categories or dates.")
    y: list[str] = Field(
        min_length=1, max_length=MAX_SERIES,
        description="The result column(s) of numbers to plot (a pie takes one).",
    )
    title: str = Field("", max_length=200, description="A short title for the chart.")

    @field_validator("y", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pie_has_one_series(self) -> ChartArguments:
        if self.type == "pie" and len(self.y) != 1:
            raise ValueError("a pie chart plots one y column")
        return self


def _numeric(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool))


def _column(name: str, columns: list[str], role: str) -> str:
    if name in columns:
        return name
    folded = [c for c in columns if c.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise ToolError(
        f"The chart's {role} column {name!r} is not in the result; its columns are: {', '.join(columns)}. "
        "Name result columns (use AS in the SQL), or leave out 'chart'."
    )


def chart_checked(chart: ChartArguments | None, columns: list[str], rows: list[tuple]) -> dict | None:
    """The chart as stored, its columns matched to the result's; a ToolError says what to fix."""
    if chart is None:
        return None
    x = _column(chart.x, columns, "x")
    ys = list(dict.fromkeys(_column(y, columns, "y") for y in chart.y))
    for y in ys:
        index = columns.index(y)
        if not all(_numeric(row[index]) for row in rows):
            raise ToolError(
                f"The chart's y column {y!r} holds values that are not numbers: plot a count, sum or average "
                "(aggregate in SQL), or leave out 'chart'."
            )
    return {"type": chart.type, "x": x, "y": ys, "title": " ".join(chart.title.split())}


def json_value(value: Any) -> Any:
    """A cell as JSON: numbers stay numbers where the browser keeps them exact (decimals as text,
    which sorts and plots as a number there), dates as ISO text, bytes as their size."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < EXACT_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return f"<{len(bytes(value))} bytes>"
    text = str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def query_source(answer, *, sql: str, shown: int, chart: dict | None, table: str) -> QueryPassage:
    """The citable source of a query (connectors.sql_questions.SqlAnswer) whose first `shown` rows
    the model read as `table`."""
    result = answer.result
    datasets = list(answer.datasets)
    record = {
        "kind": "query",
        "query_id": str(uuid.uuid4()),
        "title": f"{answer.connector_name}: {', '.join(datasets)}" if datasets else answer.connector_name,
        "connector": answer.connector_name,
        "connector_id": answer.connector_id,
        "sql": sql,
        "columns": list(result.columns),
        "rows": [[json_value(v) for v in row] for row in result.rows[:shown]],
        "row_count": len(result.rows),
        "truncated": bool(result.truncated),
        "chart": chart,
        "datasets": datasets,
        "access": answer.access,
    }
    return query_passage(record, f"{sql}\n\n{table}")
