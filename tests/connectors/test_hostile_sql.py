"""The hostile corpus (tests/connectors/data/hostile_questions.jsonl): statements a model or a
curious user might write to escape governed SQL — writes, stacked statements, writable CTEs,
comment and quoting tricks, Unicode look-alikes, system catalogs, denied functions, schema-qualified
names, names that are not datasets reached through subqueries, joins, aliases and CTE scope, LIMIT
tricks, INTO OUTFILE, locking, SELECT INTO, executable comments, values of gigabytes (repeat, lpad).
Every one is refused by govern() with a message that says why (the `refused_for` words) and what to
do instead.

And the denied-column corpus (data/denied_column_questions.jsonl), run on the real PostgreSQL and
MariaDB: a denied column reached through *, a subquery, a join, an alias or a row value is never
refused outright (the query is legitimate) but never returns a denied value either."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from connectors.sources.database.governed import govern
from connectors.sources.sql_policy import SqlRefused
from tests.connectors.chinook_sql import relations, run, shown

DATA = Path(__file__).parent / "data"


def _cases(name: str) -> list[tuple[str, dict]]:
    cases = []
    for number, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), start=1):
        entry = json.loads(line)
        for dialect in ("postgres", "mysql") if entry["dialect"] == "both" else (entry["dialect"],):
            cases.append(pytest.param(dialect, entry, id=f"{dialect}-{number}-{entry.get('category', entry.get('expect'))}"))
    return cases


HOSTILE = _cases("hostile_questions.jsonl")
DENIED = _cases("denied_column_questions.jsonl")
#: Words that tell the writer what to do instead.
FIX = re.compile(r"\b(use|remove|write|rename|must|cast)\b", re.IGNORECASE)


def test_the_hostile_corpus_is_large_and_covers_every_kind_of_trick():
    assert len(HOSTILE) >= 150
    per_dialect = Counter(case.values[0] for case in HOSTILE)
    assert per_dialect["postgres"] >= 150 and per_dialect["mysql"] >= 150
    categories = {case.values[1]["category"] for case in HOSTILE}
    assert categories >= {
        "write", "not_select", "stacked", "writable_cte", "select_into", "locking", "executable_comment", "variable",
        "catalog", "denied_function", "schema_qualified", "not_a_dataset", "cte_scope", "reserved_name", "limit",
        "comment_quoting", "unicode", "huge_value",
    }


@pytest.mark.parametrize(("dialect", "entry"), HOSTILE)
def test_a_hostile_statement_is_refused_saying_what_to_fix(dialect, entry):
    with pytest.raises(SqlRefused) as refused:
        govern(entry["sql"], dialect, relations(dialect), groups=["sales"], row_limit=100)
    message = str(refused.value)
    assert entry["refused_for"].lower() in message.lower(), message
    assert FIX.search(message), f"the refusal does not say what to do instead: {message}"


# --- denied columns, on the real servers --------------------------------------------------------

#: Denied columns (PostgreSQL names; MariaDB's are matched without case and underscores).
DENY = {"customer": ("email", "phone"), "employee": ("email", "birth_date")}


@pytest.fixture(scope="module")
def denied_values(pg_chinook, my_chinook):
    """Per dialect: every value of a denied column, less values an allowed column also holds."""
    found = {}
    for dialect, database in (("postgres", pg_chinook), ("mysql", my_chinook)):
        everything = relations(dialect)
        denied, allowed = set(), set()
        for name, relation in everything.items():
            table = relation.table[0]
            columns, rows = run(dialect, database, f"SELECT * FROM {table}" if dialect == "mysql" else f'SELECT * FROM "{table}"')
            hidden = {c.replace("_", "") for c in DENY.get(name, ())}
            for index, column in enumerate(columns):
                values = {shown(row[index]) for row in rows if row[index] is not None}
                (denied if column.replace("_", "") in hidden else allowed).update(values)
        found[dialect] = {value for value in denied - allowed if len(value) >= 6}
    assert all(len(values) > 100 for values in found.values())
    return found


def _leaks(rows: list[tuple], secrets: set[str]) -> list[str]:
    text = [shown(value) for row in rows for value in row if value is not None]
    return sorted({secret for secret in secrets for cell in text if secret in cell})


@pytest.mark.usefixtures("sample_database_servers")
@pytest.mark.parametrize(("dialect", "entry"), DENIED)
def test_a_denied_column_never_comes_back(dialect, entry, pg_chinook, my_chinook, denied_values):
    database = pg_chinook if dialect == "postgres" else my_chinook
    governed = govern(entry["sql"], dialect, relations(dialect, denied=DENY), groups=[], row_limit=10_000)
    try:
        _columns, rows = run(dialect, database, governed.sql)
    except Exception as exc:  # noqa: BLE001 - the server's own "no such column", in either driver
        assert entry["expect"] in ("error", "no_leak"), f"{entry['sql']} failed: {exc}"
        assert re.search(r"(?i)column|unknown|does not exist", str(exc)), exc
        return
    assert entry["expect"] in ("rows", "no_leak"), f"{entry['sql']} ran and returned {len(rows)} rows"
    assert entry["expect"] == "no_leak" or rows
    assert _leaks(rows, denied_values[dialect]) == []
