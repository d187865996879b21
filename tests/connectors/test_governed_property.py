"""Property: whatever SELECT is written, a governed query never returns a row or a column its reader
may not see.

Hypothesis builds two scratch tables on the real PostgreSQL or MariaDB — `items`, whose rows carry
their groups in one of the formats indexing reads (comma-separated text, a JSON array, a PostgreSQL
text[]), and `labels`, public — with random rows, a random deny-list of columns on each, random
readers (sets of groups), and random SELECTs (projections with * and qualified stars, filters,
joins, self-joins, aggregates, subqueries, CTEs, UNION, EXISTS). The expected result comes from a
Python model of what each reader may see: the test writes only those rows and columns into
reference tables and runs the same SELECT over them. The governed result must equal it (or both
fail, when the SELECT names a denied column), and no cell may hold a marker of a hidden row or a
denied column.

SQL_PROPERTY_EXAMPLES sets the number of examples (15 in the suite; run thousands by hand)."""

from __future__ import annotations

import json
import os
import re

import pytest
import sqlglot
from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st
from sqlglot import exp

from connectors.sources.database.governed import GovernedRelation, govern
from tests.connectors.chinook_sql import normal, run
from tests.connectors.sample_dbs import my_connect, pg_connect

pytestmark = pytest.mark.usefixtures("sample_database_servers")

EXAMPLES = int(os.environ.get("SQL_PROPERTY_EXAMPLES") or 15)
#: Group names as admins write them: case matters, punctuation and non-ASCII letters occur.
GROUPS = ["g0", "g1", "G1", "sales", "hr-eu", "o'brien", "équipe"]
ITEM_COLUMNS = ["id", "owner", "amount", "note", "grp_text", "grp_json", "grp_array"]
LABEL_COLUMNS = ["id", "label", "code"]
ACL_FORMATS = {"postgres": ["grp_text", "grp_json", "grp_array"], "mysql": ["grp_text", "grp_json"]}

# --- the generated world ---------------------------------------------------------------------------

row_groups = st.one_of(st.none(), st.frozensets(st.sampled_from(GROUPS), max_size=3))
items = st.lists(
    st.tuples(st.sampled_from(["ann", "bob", "cy"]), st.integers(-5, 50), row_groups, st.sampled_from([", ", ",", " , "])),
    min_size=1, max_size=10,
)
readers = st.lists(st.frozensets(st.sampled_from(GROUPS), max_size=3), min_size=1, max_size=3)
where = st.sampled_from([
    "", "WHERE i.amount > {k}", "WHERE i.owner = '{o}'", "WHERE i.note LIKE '%1%'", "WHERE i.id IN (SELECT id FROM labels)",
    "WHERE i.amount BETWEEN 0 AND {k} OR i.owner <> '{o}'", "WHERE i.grp_text LIKE '%g%'",
])
projection = st.one_of(
    st.sampled_from(["*", "i.*", "count(*)", "count(*), sum(i.amount)", "max(i.note), min(i.owner)", "i.id, i.note"]),
    st.lists(st.sampled_from(ITEM_COLUMNS), min_size=1, max_size=3, unique=True).map(lambda cs: ", ".join(f"i.{c}" for c in cs)),
)
TEMPLATES = [
    "SELECT {p} FROM items i {w}",
    "SELECT {p} FROM items AS i JOIN labels l ON l.id = i.id {w}",
    "SELECT {p}, l.* FROM items i LEFT JOIN labels l ON l.id = i.id {w}",
    "SELECT {p} FROM (SELECT * FROM items) i {w}",
    "WITH i AS (SELECT * FROM items) SELECT {p} FROM i {w}",
    "SELECT i.owner, count(*), sum(i.amount) FROM items i {w} GROUP BY i.owner",
    "SELECT id FROM items UNION ALL SELECT id FROM labels",
    "SELECT i.note FROM items i {w} UNION SELECT label FROM labels",
    "SELECT * FROM labels l WHERE l.id IN (SELECT i.id FROM items i {w})",
    "SELECT (SELECT count(*) FROM items) AS n, l.* FROM labels l",
    "SELECT {p} FROM items i {w} AND EXISTS (SELECT 1 FROM labels l WHERE l.id = i.id)",
    "SELECT i.id, j.id, j.note FROM items i JOIN items j ON i.owner = j.owner",
    "SELECT * FROM items",
    "SELECT items.* FROM items, labels WHERE labels.id = items.id",
    "SELECT x.* FROM (SELECT i.*, l.code FROM items i JOIN labels l USING (id)) x",
]
query = st.builds(
    lambda template, p, w, k, o: template.format(p=p, w=w or "WHERE 1 = 1", k=k, o=o).replace("WHERE 1 = 1 AND", "WHERE"),
    st.sampled_from(TEMPLATES), projection, where, st.integers(0, 50), st.sampled_from(["ann", "bob"]),
)
world = st.fixed_dictionaries({
    "dialect": st.sampled_from(["postgres", "mysql"]),
    "items": items,
    "labels": st.lists(st.integers(1, 12), max_size=8, unique=True),
    "acl_format": st.integers(0, 2),
    "denied_items": st.frozensets(st.sampled_from(ITEM_COLUMNS[1:])),
    "denied_labels": st.frozensets(st.sampled_from(LABEL_COLUMNS[1:])),
    "readers": readers,
    "queries": st.lists(query, min_size=1, max_size=4),
})


# --- the model and the tables --------------------------------------------------------------------


def _groups_as(fmt: str, groups, separator: str, dialect: str):
    if groups is None:
        return None
    names = sorted(groups)
    if fmt == "grp_text":
        return separator.join(names)
    if fmt == "grp_json":
        return json.dumps(names, ensure_ascii=False)
    return names  # text[]: psycopg adapts a list


def _item_rows(spec) -> list[dict]:
    rows = []
    for number, (owner, amount, groups, separator) in enumerate(spec["items"], start=1):
        row = {"id": number, "owner": owner, "amount": amount, "note": f"note-{number}-hidden", "groups": groups}
        for fmt in ("grp_text", "grp_json", "grp_array"):
            row[fmt] = _groups_as(fmt, groups, separator, spec["dialect"])
        rows.append(row)
    return rows


def _label_rows(spec) -> list[dict]:
    return [{"id": number, "label": f"label-{number}", "code": f"code-{number}-hidden"} for number in spec["labels"]]


def _visible(row: dict, reader: frozenset) -> bool:
    """The model: a row is seen by a reader in one of its groups (exact names); never without groups."""
    return bool(row["groups"]) and bool(set(row["groups"]) & reader)


def _columns(spec, table: str) -> list[str]:
    if table == "items":
        every = ITEM_COLUMNS if spec["dialect"] == "postgres" else ITEM_COLUMNS[:-1]
        return [c for c in every if c not in spec["denied_items"]]
    return [c for c in LABEL_COLUMNS if c not in spec["denied_labels"]]


TYPES = {
    "postgres": {"id": "int", "owner": "text", "amount": "int", "note": "text", "grp_text": "text", "grp_json": "jsonb",
                 "grp_array": "text[]", "label": "text", "code": "text"},
    "mysql": {"id": "INT", "owner": "TEXT", "amount": "INT", "note": "TEXT", "grp_text": "TEXT", "grp_json": "JSON",
              "label": "TEXT", "code": "TEXT"},
}


def _fill(dialect: str, database: str, table: str, columns: list[str], rows: list[dict]) -> None:
    """(Re)create `table` with `columns` holding `rows`, on one connection."""
    quote = '"' if dialect == "postgres" else "`"
    statements = [
        f"DROP TABLE IF EXISTS {table}",
        f"CREATE TABLE {table} ({', '.join(f'{quote}{c}{quote} {TYPES[dialect][c]}' for c in columns)})",
    ]
    insert = f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(columns))})"
    values = [tuple(row[c] for c in columns) for row in rows]
    conn = pg_connect(database) if dialect == "postgres" else my_connect(database)
    try:
        cursor = conn.cursor()
        for statement in statements:
            cursor.execute(statement)
        if values:
            cursor.executemany(insert, values)
    finally:
        conn.close()


def _over(sql: str, dialect: str, tables: dict[str, str]) -> str:
    """The same SELECT over other tables (the reference ones)."""
    tree = sqlglot.parse_one(sql, read=dialect)
    for table in tree.find_all(exp.Table):
        if table.name in tables:
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
            table.replace(exp.Table(this=exp.to_identifier(tables[table.name]), alias=alias))
    return tree.sql(dialect=dialect)


def _outcome(dialect: str, database: str, sql: str):
    try:
        return run(dialect, database, sql)
    except Exception as exc:  # noqa: BLE001 - either driver's "no such column" (a denied one)
        assert re.search(r"(?i)column|unknown|does not exist|ambiguous", str(exc)), exc
        return None


# No shrinking: each step rebuilds tables on a server, and the failure already names the SELECT and reader.
@hsettings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=world)
def test_a_governed_query_never_returns_a_row_or_column_the_reader_may_not_see(spec, pg_chinook, my_chinook):
    dialect = spec["dialect"]
    database = pg_chinook if dialect == "postgres" else my_chinook
    acl_column = ACL_FORMATS[dialect][spec["acl_format"] % len(ACL_FORMATS[dialect])]
    item_rows, label_rows = _item_rows(spec), _label_rows(spec)
    every = ITEM_COLUMNS if dialect == "postgres" else ITEM_COLUMNS[:-1]
    _fill(dialect, database, "prop_items", every, item_rows)
    _fill(dialect, database, "prop_labels", LABEL_COLUMNS, label_rows)
    relations = {
        "items": GovernedRelation(name="items", table=("prop_items",), columns=tuple(_columns(spec, "items")),
                                  row_groups_column=acl_column),
        "labels": GovernedRelation(name="labels", table=("prop_labels",), columns=tuple(_columns(spec, "labels"))),
    }
    for reader in spec["readers"]:
        seen = [row for row in item_rows if _visible(row, reader)]
        _fill(dialect, database, "prop_items_ref", _columns(spec, "items"), seen)
        _fill(dialect, database, "prop_labels_ref", _columns(spec, "labels"), label_rows)
        hidden = {row["note"] for row in item_rows if row not in seen}
        if "note" in spec["denied_items"]:
            hidden |= {row["note"] for row in item_rows}
        if "code" in spec["denied_labels"]:
            hidden |= {row["code"] for row in label_rows}
        for sql in spec["queries"]:
            governed = govern(sql, dialect, relations, groups=sorted(reader), row_limit=1000)
            got = _outcome(dialect, database, governed.sql)
            expected = _outcome(dialect, database, _over(sql, dialect, {"items": "prop_items_ref", "labels": "prop_labels_ref"}))
            assert (got is None) == (expected is None), (sql, reader, got, expected)
            if got is None:
                continue
            assert got[0] == expected[0], (sql, got[0], expected[0])
            assert normal(got[1]) == normal(expected[1]), (sql, sorted(reader), acl_column, got[1], expected[1])
            cells = [str(value) for row in got[1] for value in row]
            assert not [cell for cell in cells if any(secret in cell for secret in hidden)], (sql, reader)
