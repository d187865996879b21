"""Questions in SQL over a database connector, scored by execution: the configured model is given
the datasets a user may query (columns, types, a few sample values, row counts) and asked for one
SELECT; its SQL is governed and run as that user (connectors.sources.database.questions), and the
result is compared with the gold SQL's, run the same way.

Metrics, over all questions:
- execution_accuracy: the result equals the gold result — rows compared as a multiset, in order
  where the gold query orders its outermost result; the values of a row are compared without their
  column order (a model may list the columns differently), numbers to 4 decimals;
- valid_sql: the model's SQL was governed and ran without an error;
- refused: governance refused it (SqlRefused); no_sql: no SQL could be read from the answer;
- latency: median seconds per question (model and query) and median query time.

`gold=True` skips the model and scores the gold SQL itself: a check of the harness (and of the
question set against the connector's datasets), which must give 1.0.

Questions come as JSON Lines: {"id", "question", "postgres": SQL, "mysql": SQL}; the connector's
dialect picks the gold SQL (docs/evaluation/chinook_questions.jsonl).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from asgiref.sync import async_to_sync
from django.conf import settings
from sqlglot import exp

from assistant.rag.evaluation import metrics as ev
from assistant.rag.evaluation.datasets import EvaluationError
from connectors.models import Connector
from connectors.selectors import acl_groups_of
from connectors.services import connector_source
from connectors.sources.base import SourceError
from connectors.sources.database.governed import GovernedRelation, govern
from connectors.sources.database.questions import (
    QueryResult, QuestionFailed, dataset_columns, dataset_visible, relations_for, run_governed,
)
from connectors.sources.sql_policy import DIALECTS, SqlRefused, check_select
from inference.chat_client import ChatClient, ModelServerError

COLUMNS = ("execution_accuracy", "valid_sql", "refused", "no_sql")
#: Rows a query may return to the harness: the download cap, so results are compared whole.
ROW_LIMIT = 10_000
SAMPLE_ROWS = 3


def read_sql_questions(path: Path, dialect: str) -> list[dict]:
    """The questions with gold SQL in `dialect`; EvaluationError names a bad line."""
    if not path.is_file():
        raise EvaluationError(f"{path} does not exist")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise EvaluationError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("question"), str) or not isinstance(entry.get(dialect), str):
            raise EvaluationError(f"{path}:{number}: needs \"question\" and the gold SQL under \"{dialect}\"")
        questions.append({"id": entry.get("id") or f"q{number}", "question": entry["question"], "gold": entry[dialect]})
    if not questions:
        raise EvaluationError(f"No questions in {path}")
    return questions


# --- the connector as the model sees it ------------------------------------------------------------


class Database:
    """A database connector's datasets as one user may query them, and a way to run SQL as that user."""

    def __init__(self, connector: Connector, user, *, timeout_s: float):
        if connector.kind not in DIALECTS:
            raise EvaluationError(f"Connector {connector.name!r} is a {connector.kind} source, not a database")
        try:
            self.source = connector_source(connector)
        except SourceError as exc:
            raise EvaluationError(f"Connector {connector.name!r}: {exc}") from None
        self.dialect = self.source.sql_dialect
        self.groups = acl_groups_of(user)
        visible = connector.is_public or connector.groups.filter(name__in=self.groups).exists()
        datasets = [ds for ds in self.source.config.datasets if dataset_visible(ds, self.groups, connector_visible=visible)]
        if not datasets:
            raise EvaluationError(f"User {user.username!r} may query no dataset of {connector.name!r}")
        self.timeout_s = timeout_s
        self.descriptions = {ds.name: ds.description for ds in datasets}
        try:
            columns = dataset_columns(self.source, datasets, timeout_s=timeout_s)
        except QuestionFailed as exc:
            raise EvaluationError(f"Cannot read the datasets of {connector.name!r}: {exc}") from None
        self.relations = relations_for(datasets, columns)
        self.types = {name: dict(pairs) for name, pairs in columns.items()}

    def run(self, sql: str) -> QueryResult:
        """`sql` governed and run as the user; SqlRefused or QuestionFailed when it cannot be."""
        governed = govern(sql, self.dialect, self.relations, groups=self.groups, row_limit=ROW_LIMIT)
        return run_governed(self.source, governed, timeout_s=self.timeout_s)

    def describe(self) -> str:
        """Each dataset with its row count, description, and columns with types and sample values."""
        parts = []
        for name, relation in sorted(self.relations.items()):
            parts.append(self._describe_one(name, relation))
        return "\n\n".join(parts)

    def _describe_one(self, name: str, relation: GovernedRelation) -> str:
        quoted = exp.to_identifier(name).sql(dialect=self.dialect)
        try:
            count = self.run(f"SELECT count(*) FROM {quoted}").rows[0][0]
            sample = self.run(f"SELECT * FROM {quoted} LIMIT {SAMPLE_ROWS}")
        except (SqlRefused, QuestionFailed) as exc:
            raise EvaluationError(f"Cannot describe dataset {name}: {exc}") from None
        lines = [f"Table {name} ({count} rows)" + (f": {self.descriptions[name]}" if self.descriptions.get(name) else "")]
        types = self.types.get(name, {})
        for index, column in enumerate(sample.columns):
            values = list(dict.fromkeys(_shown(row[index]) for row in sample.rows if row[index] is not None))
            example = f", e.g. {', '.join(values)}" if values else ""
            lines.append(f"  - {column} {types.get(column, '').lower()}{example}")
        return "\n".join(lines)


def _shown(value) -> str:
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text) if isinstance(value, str) else text


# --- asking the model ---------------------------------------------------------------------------


def prompt_messages(question: str, schema: str, dialect: str) -> list[dict]:
    system = (
        f"You write SQL for {DIALECTS[dialect]}. Answer the user's question with exactly one read-only SELECT "
        "statement over the tables below, and nothing else: no explanation, no second statement. Use only "
        "these tables and columns, by these names. Put the SQL in a ```sql code block.\n\n" + schema
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


_FENCED = re.compile(r"```(?:sql)?\s*(.*?)```", re.IGNORECASE | re.DOTALL)
#: Outside a code block, SQL starts a line (any case) or is an upper-case SELECT ("the word with" is prose).
_START = (re.compile(r"^[ \t]*(?:select|with)\b", re.IGNORECASE | re.MULTILINE), re.compile(r"\bSELECT\b"))


def sql_extract(answer: str) -> str | None:
    """The SQL in a model's answer: a fenced block as written, else from the first SELECT/WITH to
    the first semicolon or blank line (what follows is usually prose)."""
    fenced = _FENCED.search(answer or "")
    if fenced:
        return fenced.group(1).strip() or None
    starts = [found.start() for pattern in _START if (found := pattern.search(answer or ""))]
    if not starts:
        return None
    return re.split(r";|\n\s*\n", answer[min(starts):], maxsplit=1)[0].strip() or None


def model_asker(llm: dict) -> Callable[[list[dict]], str]:
    client = ChatClient(
        base_url=llm["LLM_BASE_URL"], model=llm["LLM_MODEL"], api_key=llm["LLM_API_KEY"] or "none",
        timeout=settings.LLM_TIMEOUT, connect_retries=settings.LLM_CONNECT_RETRIES,
    )

    def ask(messages: list[dict]) -> str:
        return async_to_sync(client.complete)(messages, max_tokens=llm["LLM_MAX_TOKENS"], temperature=0.0)

    return ask


# --- scoring ------------------------------------------------------------------------------------


def gold_orders(sql: str, dialect: str) -> bool:
    """Whether the outermost query orders its rows (then the order is part of the answer)."""
    return bool(check_select(sql, dialect).args.get("order"))


def _cell(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), 4)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _row(row) -> tuple:
    return tuple(sorted((_cell(v) for v in row), key=repr))


def results_match(gold: QueryResult, got: QueryResult, *, ordered: bool) -> bool:
    if len(gold.columns) != len(got.columns) or gold.truncated or got.truncated:
        return False
    gold_rows, got_rows = [_row(r) for r in gold.rows], [_row(r) for r in got.rows]
    return gold_rows == got_rows if ordered else Counter(gold_rows) == Counter(got_rows)


def _attempt(database: Database, sql: str | None) -> tuple[str, QueryResult | None, str | None]:
    """(outcome, result, error): outcome is "ran", "refused", "failed" or "no_sql"."""
    if not sql:
        return "no_sql", None, "no SQL in the answer"
    try:
        return "ran", database.run(sql), None
    except SqlRefused as exc:
        return "refused", None, str(exc)
    except QuestionFailed as exc:
        return "failed", None, str(exc)


def _score_one(database: Database, question: dict, ask: Callable[[list[dict]], str] | None, schema: str) -> dict:
    started = time.monotonic()
    gold_outcome, gold, gold_error = _attempt(database, question["gold"])
    if gold is None:
        raise EvaluationError(f"The gold SQL of {question['id']} does not run as this user: {gold_error}")
    answer, model_error = question["gold"], None
    asked = time.monotonic()
    if ask is not None:
        try:
            answer = ask(prompt_messages(question["question"], schema, database.dialect))
        except ModelServerError as exc:
            answer, model_error = "", str(exc)
    model_s = time.monotonic() - asked
    sql = sql_extract(answer) if ask is not None else answer
    outcome, got, error = _attempt(database, sql)
    correct = got is not None and results_match(gold, got, ordered=gold_orders(question["gold"], database.dialect))
    return {
        "id": question["id"], "question": question["question"], "gold_sql": question["gold"], "sql": sql,
        "answer": None if ask is None else answer[:2000], "outcome": outcome, "error": model_error or error,
        "correct": correct, "rows": None if got is None else len(got.rows), "gold_rows": len(gold.rows),
        "model_s": round(model_s, 2), "query_ms": None if got is None else got.elapsed_ms,
        "latency_s": round(time.monotonic() - started, 2),
    }


def sql_evaluate(*, questions_file: Path, connector_name: str, user, ask, llm: dict | None, limit: int | None,
                 timeout_s: float, log) -> dict:
    """Score the questions on the connector as `user`; `ask=None` scores the gold SQL itself."""
    connector = Connector.objects.admin_managed().filter(name=connector_name).first()
    if connector is None:
        raise EvaluationError(f"No connector named {connector_name!r}")
    database = Database(connector, user, timeout_s=timeout_s)
    questions = read_sql_questions(questions_file.expanduser().resolve(), database.dialect)[:limit]
    schema = database.describe()
    items = []
    for number, question in enumerate(questions, start=1):
        items.append(_score_one(database, question, ask, schema))
        item = items[-1]
        log(f"[{number}/{len(questions)}] {item['outcome']:<7} correct={int(item['correct'])} "
            f"{item['latency_s']:.1f}s {question['question'][:70]!r}")
    return _report(items, questions_file, connector, database, user, llm, schema)


def _report(items, questions_file: Path, connector, database: Database, user, llm: dict | None, schema: str) -> dict:
    n = len(items)
    outcomes = Counter(item["outcome"] for item in items)
    metrics = {
        "execution_accuracy": sum(item["correct"] for item in items) / n,
        "valid_sql": outcomes["ran"] / n, "refused": outcomes["refused"] / n, "no_sql": outcomes["no_sql"] / n,
    }
    query_ms = [item["query_ms"] for item in items if item["query_ms"] is not None]
    return {
        "kind": "sql",
        "dataset": questions_file.stem,
        "questions": n,
        "metrics": {key: round(value, 4) for key, value in metrics.items()},
        "counts": {"questions": n, "correct": sum(item["correct"] for item in items), **dict(outcomes)},
        "latency": {"median_s": ev.median(item["latency_s"] for item in items), "median_query_ms": ev.median(query_ms)},
        "settings": {
            "source": connector.name, "dialect": database.dialect, "user": user.username, "groups": database.groups,
            "datasets": sorted(database.relations), "timeout_s": database.timeout_s,
            "llm_model": "gold SQL (no model)" if llm is None else llm["LLM_MODEL"],
            "llm_base_url": None if llm is None else llm["LLM_BASE_URL"],
            "prompt_schema_chars": len(schema),
        },
        "timing": {},
        "items": items,
    }
