"""What a database offers the connector form: its tables and views with their columns and types,
the columns of a SELECT, read on the connector's own guarded, read-only session under a timeout.

    relations, truncated = list_relations(source, timeout_s=10)
    columns = query_columns(source, dataset, timeout_s=10)      # a query checked like a dataset's
    documents = preview_documents(source, dataset, limit=2)     # rows as indexing makes them

Only what the account may read is listed (PostgreSQL: has_table_privilege; MySQL's
information_schema shows nothing else); names a table dataset cannot use (a dot in it, or not a
plain MySQL name) are left out. Plain Python, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.sources.base import SourceDocument
from connectors.sources.database.config import Dataset
from connectors.sources.database.questions import RESULT_MAX_BYTES, dataset_columns
from connectors.sources.database.source import _DatabaseSource
from connectors.sources.database.sql import MYSQL_IDENTIFIER

#: The most columns (over all relations) read from the catalogue.
MAX_CATALOG_COLUMNS = 20_000

PG_CATALOG = """
SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname = 'public' DESC, n.nspname, c.relname, a.attnum
"""

MYSQL_CATALOG = """
SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.COLUMN_TYPE
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE()
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""

_PG_KINDS = {"v": "view", "m": "view"}


@dataclass
class Relation:
    """A table or view as a dataset names it ("album", or "sales.orders" outside the default schema)."""

    name: str
    kind: str  # "table" or "view"
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, type)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "columns": [{"name": name, "type": kind} for name, kind in self.columns],
        }


def list_relations(source: _DatabaseSource, *, timeout_s: float) -> tuple[list[Relation], bool]:
    """The tables and views the account may read, with their columns; and whether the list was cut
    at MAX_CATALOG_COLUMNS columns."""
    mysql = source.sql_dialect == "mysql"
    with source._session() as session:
        _, rows = source._run_question(
            session, MYSQL_CATALOG if mysql else PG_CATALOG, timeout_s=timeout_s,
            max_rows=MAX_CATALOG_COLUMNS + 1, max_bytes=RESULT_MAX_BYTES,
        )
    truncated = len(rows) > MAX_CATALOG_COLUMNS
    relations: dict[str, Relation] = {}
    for schema, table, kind, column, column_type in rows[:MAX_CATALOG_COLUMNS]:
        name = _usable_name(schema, table, mysql=mysql)
        if name is None:
            continue
        if name not in relations:
            if mysql:
                shown_kind = "view" if str(kind).upper() == "VIEW" else "table"
            else:
                shown_kind = _PG_KINDS.get(str(kind), "table")
            relations[name] = Relation(name, shown_kind)
        relations[name].columns.append((str(column), str(column_type)))
    return list(relations.values()), truncated


def _usable_name(schema: str, table: str, *, mysql: bool) -> str | None:
    """The dataset's `table` for this relation, or None when a table dataset cannot name it."""
    if "." in table or not table.strip() or table != table.strip():
        return None
    if mysql:
        return table if MYSQL_IDENTIFIER.fullmatch(table) and len(table) <= 64 else None
    if schema == "public":
        return table
    return None if "." in schema else f"{schema}.{table}"


def query_columns(source: _DatabaseSource, dataset: Dataset, *, timeout_s: float) -> list[tuple[str, str]]:
    """The columns (name, type) a dataset's table or checked query returns, read with LIMIT 0."""
    return dataset_columns(source, [dataset], timeout_s=timeout_s)[dataset.name]


def preview_documents(source: _DatabaseSource, dataset: Dataset, *, limit: int) -> list[SourceDocument]:
    """The first `limit` rows (by id) as the documents indexing makes of them; the dataset's columns
    are checked first, so a wrong column is named with its use (id column, title template, ...)."""
    with source._session() as session:
        columns, rows = source._select(session, dataset, limit=0)
        rows.close()
        source._verify_columns(dataset, columns)
        columns, rows = source._select(session, dataset, order=list(dataset.id_columns), limit=limit)
        try:
            return [item for item in map(lambda row: source._document(dataset, row), rows)
                    if isinstance(item, SourceDocument)]
        finally:
            rows.close()
