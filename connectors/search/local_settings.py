"""A search query run with its own planner settings (SET LOCAL) in one round trip to the database.

Sent as one message, "SET LOCAL a = x; SET LOCAL b = y; SELECT ..." runs as one implicit
transaction outside a transaction block, so the settings end with the query; inside one (a
caller's atomic block) they last until its end, as SET LOCAL always does. One round trip instead
of four (BEGIN, SET, SELECT, COMMIT): on a busy machine each is a wait for the database's turn on
a core. Django's psycopg cursor binds parameters on the client side, which allows several
statements in one execute.
"""

from __future__ import annotations

from django.db import connection


def rows_with_settings(statements: list[str], sql: str, params) -> list[tuple]:
    """The rows of `sql` run after `statements` (each a "SET LOCAL ..." without parameters)."""
    with connection.cursor() as cursor:
        cursor.execute("; ".join([*statements, sql]), params)
        while cursor.description is None:  # the SETs' results come first
            if not cursor.nextset():
                return []
        return cursor.fetchall()


def settings_and_query(sql: str) -> tuple[list[str], str]:
    """A statement `rows_with_settings` sent, split back into its SETs and its query (for EXPLAIN)."""
    statements = []
    while sql.lstrip().upper().startswith("SET ") and "; " in sql:
        head, sql = sql.split("; ", 1)
        statements.append(head)
    return statements, sql
