"""What differs in SQL between PostgreSQL and MySQL/MariaDB: quoting, paging, read-only sessions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import sql

from connectors.sources.database.config import Dataset
from connectors.sources.database.sql import _Cond, quote_mysql_identifier


class _Dialect:
    """Builds SELECTs from fragments; PostgreSQL fragments are psycopg `sql` objects, MySQL's strings."""

    def raw(self, text: str):
        raise NotImplementedError

    def ident(self, name: str):
        raise NotImplementedError

    def table(self, parts: tuple[str, ...]):
        raise NotImplementedError

    def user_query(self, query: str):
        raise NotImplementedError

    def placeholder(self):
        return self.raw("%s")

    def join(self, sep: str, parts: list):
        raise NotImplementedError

    def concat(self, *parts):
        raise NotImplementedError

    def condition(self, cond: _Cond) -> tuple[Any, list[Any]]:
        if cond.kind == "not_null":
            return self.concat(self.ident(cond.columns[0]), self.raw(" IS NOT NULL")), []
        if cond.kind == "is_null":
            return self.concat(self.ident(cond.columns[0]), self.raw(" IS NULL")), []
        if cond.kind == "greater":
            return self.concat(self.ident(cond.columns[0]), self.raw(" > "), self.placeholder()), list(cond.values)
        if cond.kind == "after":
            left = self.join(", ", [self.ident(c) for c in cond.columns])
            right = self.join(", ", [self.placeholder() for _ in cond.columns])
            return self.concat(self.raw("("), left, self.raw(") > ("), right, self.raw(")")), list(cond.values)
        if cond.kind == "matches":
            params: list[Any] = []
            alternatives = []
            for values in cond.values:
                terms = [self.concat(self.ident(c), self.raw(" = "), self.placeholder()) for c in cond.columns]
                alternatives.append(self.concat(self.raw("("), self.join(" AND ", terms), self.raw(")")))
                params += values
            return self.concat(self.raw("("), self.join(" OR ", alternatives), self.raw(")")), params
        raise ValueError(cond.kind)

    def select(
        self,
        ds: Dataset,
        *,
        columns: list[str] | None = None,
        conditions: Iterable[_Cond] = (),
        order: list[str] | None = None,
        limit: int | None = None,
        count: bool = False,
    ) -> tuple[Any, list[Any]]:
        params: list[Any] = []
        if ds.table:
            source = self.table(ds.table_parts)
        else:
            source = self.concat(self.raw("(\n"), self.user_query(ds._runnable or ""), self.raw("\n) AS src"))
        wanted = self.join(", ", [self.ident(c) for c in columns]) if columns else self.raw("*")
        parts = [self.raw("SELECT "), wanted, self.raw(" FROM "), source]
        where = []
        for cond in conditions:
            fragment, values = self.condition(cond)
            where.append(fragment)
            params += values
        if where:
            parts += [self.raw(" WHERE "), self.join(" AND ", where)]
        if order:
            parts += [self.raw(" ORDER BY "), self.join(", ", [self.ident(c) for c in order])]
        if limit is not None:
            parts += [self.raw(" LIMIT "), self.placeholder()]
            params.append(limit)
        statement = self.concat(*parts)
        if count:
            statement = self.concat(self.raw("SELECT COUNT(*) FROM ("), statement, self.raw(") AS counted"))
        return statement, params


class _PgDialect(_Dialect):
    def __init__(self):

        self.sql = sql

    def raw(self, text):
        return self.sql.SQL(text)

    def ident(self, name):
        return self.sql.Identifier(name)

    def table(self, parts):
        return self.sql.Identifier(*parts)

    def user_query(self, query):
        # Parameters are passed, so a literal % must be written %% for psycopg.
        return self.sql.SQL(query.replace("%", "%%"))

    def placeholder(self):
        return self.sql.Placeholder()

    def join(self, sep, parts):
        return self.sql.SQL(sep).join(parts)

    def concat(self, *parts):
        return self.sql.Composed(list(parts))


class _MySqlDialect(_Dialect):
    def raw(self, text):
        return text

    def ident(self, name):
        return quote_mysql_identifier(name)

    def table(self, parts):
        return quote_mysql_identifier(".".join(parts), qualified=True)

    def user_query(self, query):
        # PyMySQL interpolates parameters with %, so a literal % must be written %%.
        return query.replace("%", "%%")

    def join(self, sep, parts):
        return sep.join(parts)

    def concat(self, *parts):
        return "".join(parts)
