"""The MySQL / MariaDB source: PyMySQL, keyset pages each streamed in its own read-only transaction."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from typing import Any, ClassVar

from pydantic import Field
import pymysql
from pymysql.constants import FIELD_TYPE
from pymysql.cursors import SSCursor

from connectors.sources.base import DestinationRefused, SourceError
from connectors.sources.database.config import DatabaseConfig, Dataset
from connectors.sources.database.sql import MYSQL_PAGE_SIZE, _after, _greater, _is_null, _not_null
from connectors.sources.database.source import QuestionFailed, Rows, _DatabaseSource, _RowStream, collect_rows
from connectors.sources.database.dialects import _MySqlDialect
from connectors.sources.database.values import _first_line

#: Column type names by PyMySQL's type code, for describing a dataset to the model.
_FIELD_TYPES = {code: name.lower() for name, code in vars(FIELD_TYPE).items() if name.isupper()}


def _drop_unread(session, cursor) -> None:
    """Drop the connection with rows still unread: PyMySQL would otherwise read them all to
    close the cursor (or, later, when the result is collected, from a closed socket)."""
    result = getattr(cursor, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    session._force_close()


class MySQLSource(_DatabaseSource):
    kind = "mysql"
    label = "MySQL / MariaDB database"
    server_label = "MySQL / MariaDB"
    sql_dialect = "mysql"

    class Config(DatabaseConfig):
        port: int = Field(3306, ge=1, le=65535)
        mysql_rules: ClassVar[bool] = True

    config: Config

    def __init__(self, config: Config):
        super().__init__(config)
        self.dialect = _MySqlDialect()

    @contextmanager
    def _session(self):

        cfg = self.config
        try:
            conn = pymysql.connect(
                host=self._guarded_address(),  # the checked address: no second DNS lookup
                port=cfg.port,
                user=cfg.user,
                password=cfg.password.get_secret_value(),
                database=cfg.database,
                charset="utf8mb4",
                connect_timeout=cfg.connect_timeout_s,
                read_timeout=cfg.statement_timeout_s + 60,
                write_timeout=cfg.statement_timeout_s + 60,
                autocommit=False,
                client_flag=0,  # no MULTI_STATEMENTS: one statement per call, whatever a query holds
                local_infile=False,
            )
        except pymysql.err.MySQLError as exc:
            raise self._connect_error(exc) from None
        except OSError as exc:
            raise self._unreachable(exc.strerror or str(exc)) from None
        try:
            try:
                with conn.cursor() as cursor:
                    self._refuse_file_privilege(cursor)
                    cursor.execute("SET SESSION TRANSACTION READ ONLY")
                    self._set_timeout(cursor)
            except pymysql.err.MySQLError as exc:
                raise self._query_error(exc, None) from None
            yield conn
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def _refuse_file_privilege(self, cursor) -> None:
        """An account with FILE or SUPER reads and writes server files (LOAD_FILE, INTO OUTFILE)
        and changes global settings, none of which a read-only transaction stops: the MySQL
        counterpart of refusing a PostgreSQL superuser."""
        cursor.execute(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES"
            " WHERE PRIVILEGE_TYPE IN ('FILE', 'SUPER') AND GRANTEE = CONCAT('''',"
            " SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
        )
        held = sorted({row[0] for row in cursor.fetchall()})
        if held:
            raise DestinationRefused(
                f"User {self.config.user} holds the {' and '.join(held)} privilege on {self.config.host}:"
                f"{self.config.port}. A connector must sign in with an account that may only read the tables "
                "it indexes (GRANT SELECT).",
                setting="user",
            )

    def _set_timeout(self, cursor, seconds: float | None = None) -> None:
        """MySQL: max_execution_time (ms, SELECTs); MariaDB: max_statement_time (s)."""

        seconds = self.config.statement_timeout_s if seconds is None else seconds
        try:
            cursor.execute("SET SESSION max_statement_time = %s", (seconds,))
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != 1193:  # unknown system variable: not MariaDB
                raise
            cursor.execute("SET SESSION max_execution_time = %s", (int(seconds * 1000),))

    def _server_version(self, session) -> str:
        info = (session.get_server_info() or "").removeprefix("5.5.5-")
        if "mariadb" in info.lower():
            return "MariaDB " + info.split("-")[0]
        return "MySQL " + info.split("-")[0]

    def _cursor_param(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                return value
            return parsed.replace(tzinfo=None) if parsed.tzinfo else parsed
        return value

    def _select(self, session, ds: Dataset, **query) -> tuple[list[str], _RowStream]:

        statement, params = self.dialect.select(ds, **query)
        cursor = None
        try:
            with session.cursor() as control:
                control.execute("START TRANSACTION READ ONLY")
            cursor = session.cursor(SSCursor)  # unbuffered: rows stream from the server
            cursor.execute(statement, tuple(params))
            columns = [column[0] for column in cursor.description or []]
        except pymysql.err.MySQLError as exc:
            self._end(session, cursor)
            raise self._query_error(exc, ds) from None
        rows = _RowStream(
            columns,
            lambda: cursor.fetchmany(MYSQL_PAGE_SIZE),
            lambda exc: self._query_error(exc, ds),
            pymysql.err.MySQLError,
            lambda: self._end(session, cursor),
        )
        return columns, rows

    def _run_question(self, session, statement: str, *, timeout_s: float, max_rows: int, max_bytes: int):
        """One governed SELECT (see questions.py): column names and at most `max_rows` rows.
        No arguments: PyMySQL sends the text as is (no % formatting), one statement per call.
        Unbuffered (SSCursor): rows come a few at a time, and a huge result is refused before it
        is all read; the connection is then dropped rather than drained."""
        cursor = None
        try:
            with session.cursor() as control:
                self._set_timeout(control, timeout_s)
                control.execute("START TRANSACTION READ ONLY")
            cursor = session.cursor(SSCursor)
            cursor.execute(statement)
            columns = [(column[0], _FIELD_TYPES.get(column[1], "unknown")) for column in cursor.description or []]
            rows = collect_rows(cursor.fetchmany, max_rows=max_rows, max_bytes=max_bytes)
        except QuestionFailed:
            _drop_unread(session, cursor)  # closing the cursor would read the rest of a huge result
            raise
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            detail = _first_line(str(exc.args[1]) if len(exc.args) > 1 else str(exc))
            self._end(session, cursor)
            raise QuestionFailed(self._scrub(detail), timed_out=code in (1969, 3024, 1317, 1028)) from None
        if rows and len(rows) == max_rows:
            _drop_unread(session, cursor)  # the query may have more rows: do not read them to close the cursor
        else:
            self._end(session, cursor)
        return columns, rows

    def _cancel_running(self, session) -> None:
        """KILL QUERY from a second connection of the same account (one may kill one's own)."""
        with self._session() as other, other.cursor() as cursor:
            cursor.execute("KILL QUERY %s", (session.thread_id(),))

    @staticmethod
    def _end(session, cursor) -> None:

        try:
            if cursor is not None:
                cursor.close()
            session.rollback()
        except (pymysql.err.MySQLError, OSError):
            pass

    def _read(self, session, ds: Dataset, after: Any, limit: int) -> Rows:
        """Page by page (keyset pagination, each page read in full before it is handed on): on
        MySQL a statement's timeout covers the time its rows take to stream, so one long
        stream to a slow consumer (the indexer) would be cancelled half way."""
        ids = list(ds.id_columns)
        base = [_not_null(c) for c in ids]
        if ds.updated_at_column:
            u = ds.updated_at_column
            if after is None:
                # Rows without an updated-at value first (MySQL sorts NULL first), by id.
                passes = [(base + [_is_null(u)], ids), (base + [_not_null(u)], [u] + ids)]
            else:
                passes = [(base + [_greater(u, self._cursor_param(after))], [u] + ids)]
        else:
            passes = [(base, ids)]
        remaining = limit
        verified = False
        for conditions, order in passes:
            last: list[Any] | None = None
            while remaining > 0:
                page_conditions = list(conditions)
                if last is not None:
                    page_conditions.append(_after(order, last))
                size = min(MYSQL_PAGE_SIZE, remaining)
                columns, rows = self._select(session, ds, conditions=page_conditions, order=order, limit=size)
                try:
                    if not verified:
                        self._verify_columns(ds, columns)
                        verified = True
                    page = list(rows)
                finally:
                    rows.close()
                yield from page
                remaining -= len(page)
                if len(page) < size:
                    break
                last = [page[-1][c] for c in order]

    def _connect_error(self, exc: Exception) -> SourceError:
        cfg = self.config
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        if code in (1045, 1698):
            return self._bad_login()
        if code == 1049:
            return self._error(f"Database {cfg.database} does not exist on the server at {cfg.host}:{cfg.port}.")
        if code == 1044:
            return self._error(f"User {cfg.user} may not use database {cfg.database}.")
        if code in (1040, 1203):
            return self._error(f"The database server at {cfg.host}:{cfg.port} is busy: {message}", permanent=False)
        if code in (2003, 2005, 2002, 2013, 2006):
            reason = re.search(r"\(([^()]*)\)\s*$", message)
            reason_text = reason.group(1) if reason else message
            if "Errno -2" in reason_text or "Errno -3" in reason_text or "Name or service not known" in reason_text:
                return self._unreachable(f"the host name {cfg.host} is unknown ({reason_text})")
            if "timed out" in reason_text.lower():
                return self._unreachable(f"no answer within {cfg.connect_timeout_s} s")
            return self._unreachable(re.sub(r"^\[Errno -?\d+\]\s*", "", reason_text))
        return self._query_error(exc, None)

    def _query_error(self, exc: Exception, ds: Dataset | None) -> SourceError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = _first_line(str(exc.args[1]) if len(exc.args) > 1 else str(exc))
        name = ds.name if ds else "?"
        if code in (1969, 3024, 1317, 1028):
            return self._timeout(ds)
        if code == 1146:
            return self._missing_table(ds, detail)
        if code in (1142, 1143, 1227):
            return self._no_select(ds, detail)
        if code in (1792, 1290, 1036):
            return self._writes(ds)
        if code == 1064:
            return self._error(f"Dataset {name}: the query is not valid SQL: {detail}")
        if code == 1054:
            return self._error(f"Dataset {name}: {detail} (in {ds.what() if ds else 'a query'}).")
        if code == 1060:
            return self._error(
                f"Dataset {name}: {ds.what() if ds else 'the query'} returns two columns with the same name "
                f"({detail}); give each column a distinct name with AS."
            )
        if code in (2006, 2013, 2014, 2055, 1927, 1053) or code is None:
            return self._lost(detail or exc.__class__.__name__)
        return self._error(f"Dataset {name}: the database reported an error: {detail}")
