"""Legitimate analytic SQL through governance gives what the table owner gets running the same text
directly: the gold SQL of the Chinook question set (docs/evaluation/chinook_questions.jsonl, both
dialects) and the extra queries of data/legit_queries.jsonl (window functions, recursive CTEs, set
operations, string and date functions over Chinook in both dialects; Northwind in PostgreSQL).
Results are compared as multisets, and in order where the query orders them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.sources.database.governed import govern
from tests.connectors.chinook_sql import direct, normal, northwind_relations, plain, relations, run

pytestmark = pytest.mark.usefixtures("sample_database_servers")

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [json.loads(line) for line in (ROOT / "docs/evaluation/chinook_questions.jsonl").read_text().splitlines()]
EXTRA = [json.loads(line) for line in (Path(__file__).parent / "data/legit_queries.jsonl").read_text().splitlines()]


def _cases():
    cases = []
    extra = [{**entry, "id": f"{entry['database']}-extra-{number:02d}"} for number, entry in enumerate(EXTRA, start=1)]
    for entry in [{**q, "database": "chinook"} for q in QUESTIONS] + extra:
        name = entry["id"]
        for dialect in ("postgres", "mysql"):
            if dialect in entry:
                cases.append(pytest.param(dialect, entry["database"], entry[dialect], id=f"{dialect}-{name}"))
    return cases


CASES = _cases()


def test_the_corpus_holds_at_least_60_queries_per_database_and_dialect_pair():
    counted = {}
    for case in CASES:
        counted[case.values[:2]] = counted.get(case.values[:2], 0) + 1
    assert counted[("postgres", "chinook")] >= 60 and counted[("mysql", "chinook")] >= 60
    assert counted[("postgres", "northwind")] >= 20


@pytest.fixture(scope="module")
def databases(pg_chinook, my_chinook, pg_northwind):
    return {("postgres", "chinook"): pg_chinook, ("mysql", "chinook"): my_chinook, ("postgres", "northwind"): pg_northwind}


@pytest.mark.parametrize(("dialect", "database", "sql"), CASES)
def test_a_legitimate_query_gives_what_the_owner_gets(dialect, database, sql, databases):
    name = databases[(dialect, database)]
    readable = relations(dialect) if database == "chinook" else northwind_relations(name)
    governed = govern(sql, dialect, readable, groups=[], row_limit=10_000)
    columns, rows = run(dialect, name, governed.sql)
    direct_columns, direct_rows = run(dialect, name, direct(sql, dialect) if database == "chinook" else sql)
    assert columns == direct_columns
    assert rows and normal(rows) == normal(direct_rows)
    if "ORDER BY" in sql.rsplit(")", 1)[-1]:  # the outermost query orders: so must the governed one
        assert [tuple(map(plain, row)) for row in rows] == [tuple(map(plain, row)) for row in direct_rows]


@pytest.mark.parametrize("question", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
def test_the_gold_sql_of_a_question_answers_alike_in_both_dialects(question, databases):
    """The evaluation's gold answers do not depend on the dialect (ordering aside: collations differ)."""
    answers = []
    for dialect in ("postgres", "mysql"):
        answers.append(normal(run(dialect, databases[(dialect, "chinook")], direct(question[dialect], dialect))[1]))
    assert answers[0] == answers[1]
