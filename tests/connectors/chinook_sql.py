"""Chinook (and Northwind) as governed datasets for the SQL tests: dataset names equal the
PostgreSQL table names, so the same query text runs directly over the tables as the reference
(MariaDB's tables are CamelCase: `direct()` renames them). Used by test_governed_sql.py,
test_hostile_sql.py, test_legit_sql.py and test_governed_property.py."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from decimal import Decimal

import sqlglot
from sqlglot import exp

from connectors.sources.database.governed import GovernedRelation
from tests.connectors.sample_dbs import my_connect, pg_connect

PG_TABLES = {
    "album": ("album_id", "title", "artist_id"),
    "artist": ("artist_id", "name"),
    "genre": ("genre_id", "name"),
    "track": ("track_id", "name", "album_id", "media_type_id", "genre_id", "composer", "milliseconds", "bytes",
              "unit_price"),
    "invoice": ("invoice_id", "customer_id", "invoice_date", "billing_address", "billing_city", "billing_state",
                "billing_country", "billing_postal_code", "total"),
    "invoice_line": ("invoice_line_id", "invoice_id", "track_id", "unit_price", "quantity"),
    "customer": ("customer_id", "first_name", "last_name", "company", "address", "city", "state", "country",
                 "postal_code", "phone", "fax", "email", "support_rep_id"),
    "employee": ("employee_id", "last_name", "first_name", "title", "reports_to", "birth_date", "hire_date",
                 "address", "city", "state", "country", "postal_code", "phone", "fax", "email"),
}
MY_TABLES = {
    name: tuple("".join(part.capitalize() for part in column.split("_")) for column in columns)
    for name, columns in PG_TABLES.items()
}
MY_NAMES = {"invoice_line": "InvoiceLine"}

NORTHWIND_TABLES = ("categories", "customers", "employees", "order_details", "orders", "products", "region",
                    "shippers", "suppliers", "territories", "employee_territories")


def my_table(name: str) -> str:
    return MY_NAMES.get(name, name.capitalize())


def relations(dialect: str, *, denied: dict | None = None, row_column: dict | None = None) -> dict:
    """Chinook's tables as datasets of the same names; `denied` columns left out (by PostgreSQL name)."""
    tables = PG_TABLES if dialect == "postgres" else MY_TABLES
    found = {}
    for name, columns in tables.items():
        hidden = {c.replace("_", "").lower() for c in (denied or {}).get(name, ())}
        table = name if dialect == "postgres" else my_table(name)
        found[name] = GovernedRelation(
            name=name, table=(table,), columns=tuple(c for c in columns if c.replace("_", "").lower() not in hidden),
            row_groups_column=(row_column or {}).get(name),
        )
    return found


def northwind_relations(database: str) -> dict:
    """Northwind's tables (PostgreSQL) as datasets of the same names, columns read from the server."""
    with pg_connect(database) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return {name: GovernedRelation(name=name, table=(name,), columns=tuple(columns[name])) for name in NORTHWIND_TABLES}


def run(dialect: str, database: str, sql: str) -> tuple[list[str], list[tuple]]:
    """`sql` run as the table owner: (column names, lower-cased; rows)."""
    if dialect == "postgres":
        with pg_connect(database) as conn:
            cursor = conn.execute(sql)
            return [d.name.lower() for d in cursor.description], cursor.fetchall()
    conn = my_connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return [d[0].lower() for d in cursor.description], list(cursor.fetchall())
    finally:
        conn.close()


def direct(sql: str, dialect: str) -> str:
    """The reference: the same query over the tables themselves (MariaDB's are CamelCase)."""
    if dialect == "postgres":
        return sql
    tree = sqlglot.parse_one(sql, read="mysql")
    for table in tree.find_all(exp.Table):
        if table.name in MY_TABLES:
            alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name))
            table.replace(exp.Table(this=exp.to_identifier(my_table(table.name)), alias=alias))
    return tree.sql(dialect="mysql")


def plain(value):
    """A cell as comparable across drivers: Decimal as a float rounded to 6 places, arrays as tuples."""
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    if isinstance(value, list):
        return tuple(plain(v) for v in value)
    return value


def normal(rows: list[tuple]) -> Counter:
    return Counter(tuple(plain(v) for v in row) for row in rows)


def shown(value) -> str:
    """A cell as text, the way it may appear inside another value (JSON, a concatenation)."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
