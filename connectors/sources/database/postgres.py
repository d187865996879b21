"""The PostgreSQL source: psycopg, a named cursor per dataset in one read-only transaction."""

from __future__ import annotations

import itertools
import os
import re
from contextlib import contextmanager
from typing import Literal

from pydantic import Field
import psycopg
from psycopg import errors

from connectors.sources.base import DestinationRefused, SourceError
from connectors.sources.database.config import DatabaseConfig, Dataset
from connectors.sources.database.sql import PG_ITERSIZE
from connectors.sources.database.source import QuestionFailed, _DatabaseSource, _RowStream, collect_rows
from connectors.sources.database.dialects import _PgDialect
from connectors.sources.database.values import _first_line


class PostgresSource(_DatabaseSource):
    kind = "postgres"
    label = "PostgreSQL database"
    server_label = "PostgreSQL"
    sql_dialect = "postgres"

    class Config(DatabaseConfig):
        port: int = Field(5432, ge=1, le=65535)
        sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None

    config: Config

    def __init__(self, config: Config):
        super().__init__(config)
        self.dialect = _PgDialect()
        self._cursor_names = itertools.count(1)

    @contextmanager
    def _session(self):

        cfg = self.config
        timeout_ms = cfg.statement_timeout_s * 1000
        params = {
            "host": cfg.host,  # still given: TLS verifies the certificate against the name
            "hostaddr": self._guarded_address(),  # the checked address: no second DNS lookup
            "port": cfg.port,
            "dbname": cfg.database,
            "user": cfg.user,
            # Always given (even empty), so libpq never falls back to PGPASSWORD or a
            # password file of the worker's own environment.
            "password": cfg.password.get_secret_value(),
            "passfile": os.devnull,
            "connect_timeout": cfg.connect_timeout_s,
            "application_name": "enterprise-assistant connector",
            "options": f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}",
        }
        if cfg.sslmode:
            params["sslmode"] = cfg.sslmode
        try:
            try:
                conn = psycopg.connect(autocommit=False, **params)
            except psycopg.OperationalError as exc:
                if "unsupported startup parameter" not in str(exc):
                    raise
                # A pooler (PgBouncer) that refuses startup options: the read-only
                # transactions and per-transaction timeout below still apply.
                del params["options"]
                conn = psycopg.connect(autocommit=False, **params)
        except psycopg.Error as exc:
            raise self._connect_error(exc) from None
        try:
            self._refuse_superuser(conn)
        except SourceError:
            conn.close()
            raise
        conn.read_only = True  # every transaction: BEGIN READ ONLY
        try:
            yield conn
        finally:
            conn.close()

    def _refuse_superuser(self, conn) -> None:
        """A superuser ignores every privilege, and functions such as pg_stat_reset() or
        pg_read_file() are not writes, so a read-only transaction does not stop them: a
        connector must sign in with an account that may only read."""
        if conn.info.parameter_status("is_superuser") == "on":
            raise DestinationRefused(
                f"User {self.config.user} is a superuser on {self.config.host}:{self.config.port}. A connector "
                "must sign in with an account that may only read the tables it indexes (GRANT SELECT).",
                setting="user",
            )

    def _server_version(self, session) -> str:
        number = session.info.server_version
        return f"PostgreSQL {number // 10000}.{number % 10000}" if number >= 100000 else f"PostgreSQL {number}"

    def _select(self, session, ds: Dataset, **query) -> tuple[list[str], _RowStream]:

        statement, params = self.dialect.select(ds, **query)
        timeout_ms = str(self.config.statement_timeout_s * 1000)
        cursor = None
        try:
            if session.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                session.rollback()
            # First statement of the transaction (BEGIN READ ONLY); local to it, so a query
            # that changed the session's settings cannot lift the timeout.
            session.execute("SELECT set_config('statement_timeout', %s, true)", [timeout_ms])
            # A named (server-side) cursor: rows arrive PG_ITERSIZE at a time, each FETCH
            # under the statement timeout.
            cursor = session.cursor(name=f"dataset_{next(self._cursor_names)}")
            cursor.execute(statement, params)
            columns = [column.name for column in cursor.description or []]
        except psycopg.Error as exc:
            self._end(session, cursor)
            raise self._query_error(exc, ds) from None
        rows = _RowStream(
            columns,
            lambda: cursor.fetchmany(PG_ITERSIZE),
            lambda exc: self._query_error(exc, ds),
            psycopg.Error,
            lambda: self._end(session, cursor),
        )
        return columns, rows

    def _run_question(self, session, statement: str, *, timeout_s: float, max_rows: int, max_bytes: int):
        """One governed SELECT (see questions.py): column names and at most `max_rows` rows.
        No parameters: the text is sent as is, through the extended protocol (one statement); a
        named cursor, so rows come a few at a time and a huge result is refused before it is all read."""
        cursor = None
        try:
            if session.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                session.rollback()
            session.execute("SELECT set_config('statement_timeout', %s, true)", [str(int(timeout_s * 1000))])
            cursor = session.cursor(name=f"question_{next(self._cursor_names)}")
            cursor.execute(statement)
            columns = [(column.name, self._type_name(session, column.type_code)) for column in cursor.description or []]
            return columns, collect_rows(cursor.fetchmany, max_rows=max_rows, max_bytes=max_bytes)
        except psycopg.Error as exc:
            raise QuestionFailed(
                self._scrub(_first_line(str(exc))), timed_out=isinstance(exc, errors.QueryCanceled)
            ) from None
        finally:
            self._end(session, cursor)

    @staticmethod
    def _type_name(session, oid: int) -> str:
        info = session.adapters.types.get(oid)
        return info.name if info else "unknown"

    def _cancel_running(self, session) -> None:
        session.cancel_safe() if hasattr(session, "cancel_safe") else session.cancel()

    @staticmethod
    def _end(session, cursor) -> None:

        try:
            if cursor is not None and not session.closed:
                cursor.close()
            if not session.closed:
                session.rollback()
        except psycopg.Error:
            pass

    def _connect_error(self, exc: Exception) -> SourceError:
        cfg = self.config
        message = str(exc)
        low = message.lower()
        sqlstate = getattr(exc, "sqlstate", None)
        detail = _first_line(message.split("failed:")[-1]) if "failed:" in message else _first_line(message)
        if sqlstate == "28P01" or "password authentication failed" in low:
            return self._bad_login()
        if "no password supplied" in low:
            return self._bad_login("the server asks for a password and none is set")
        if re.search(r'role ".*" does not exist', message):
            return self._bad_login(f"there is no user named {cfg.user}")
        if re.search(r'database ".*" does not exist', message) or sqlstate == "3D000":
            return self._error(f"Database {cfg.database} does not exist on the server at {cfg.host}:{cfg.port}.")
        if "no pg_hba.conf entry" in low:
            return self._error(
                f"The database server at {cfg.host}:{cfg.port} does not accept connections from this machine "
                f"for user {cfg.user} and database {cfg.database} (see its pg_hba.conf)."
            )
        if "permission denied for database" in low or "not permitted to log in" in low:
            return self._error(f"User {cfg.user} may not connect to database {cfg.database}: {detail}.")
        if any(busy in low for busy in ("too many connections", "too many clients", "starting up", "shutting down")):
            return self._error(f"The database server at {cfg.host}:{cfg.port} is busy: {detail}", permanent=False)
        if "ssl" in low:
            return self._error(f"The secure (SSL) connection to {cfg.host}:{cfg.port} failed: {detail}")
        if "failed to resolve host" in low or "could not translate host name" in low:
            return self._unreachable(f"the host name {cfg.host} is unknown ({detail})")
        if "timeout expired" in low or "timed out" in low:
            return self._unreachable(f"no answer within {cfg.connect_timeout_s} s")
        return self._unreachable(detail or exc.__class__.__name__)

    def _query_error(self, exc: Exception, ds: Dataset | None) -> SourceError:

        detail = _first_line(str(exc))
        if isinstance(exc, errors.QueryCanceled):
            return self._timeout(ds)
        if isinstance(exc, errors.UndefinedTable):
            if ds is not None and ds.table and ds.table != ds.table.lower():
                error = self._missing_table(ds, detail)
                return self._error(
                    f"{error} Names are case-sensitive here; PostgreSQL folds unquoted names to lower case."
                )
            return self._missing_table(ds, detail)
        if isinstance(exc, errors.InvalidSchemaName) and ds is not None and ds.table:
            return self._missing_table(ds, detail)
        if isinstance(exc, errors.InsufficientPrivilege):
            return self._no_select(ds, detail)
        if isinstance(exc, errors.ReadOnlySqlTransaction) or (
            isinstance(exc, (errors.FeatureNotSupported, errors.ActiveSqlTransaction))
            and ("data-modifying" in detail or "read-write" in detail)
        ):
            return self._writes(ds)
        if isinstance(exc, errors.SyntaxError):
            return self._error(f"Dataset {ds.name if ds else '?'}: the query is not valid SQL: {detail}")
        if isinstance(exc, errors.UndefinedColumn):
            return self._error(f"Dataset {ds.name if ds else '?'}: {detail} (in {ds.what() if ds else 'a query'}).")
        sqlstate = getattr(exc, "sqlstate", None)
        if (sqlstate is None and isinstance(exc, psycopg.OperationalError)) or str(sqlstate).startswith(("08", "57P")):
            return self._lost(detail or exc.__class__.__name__)
        return self._error(f"Dataset {ds.name if ds else '?'}: the database reported an error: {detail}")
