"""Company databases (PostgreSQL, MySQL / MariaDB): rows of tables, views or SELECTs as documents.

A connector holds connection settings and one or more *datasets*. A dataset is a table
(or view) or a single read-only SELECT; each row becomes one document whose title and
text come from templates over the row's columns (or "name: value" lines of every
column), with id columns for identity, an optional updated-at column for incremental
syncs, metadata columns kept as filterable metadata, and an ACL (the connector's, public,
fixed groups, or a column holding group names).

Safety, in layers:
- where it connects (connectors.sources.db_guard): a host name or IP over TCP, never a
  socket; no loopback/private/link-local address unless the operator allow-listed the host
  (CONNECTOR_ALLOWED_DB_HOSTS); never the product's own database; the connection goes to
  the checked address (PostgreSQL `hostaddr`, MySQL the IP itself), so DNS cannot change it
  between check and connect; checked on save, on test and at every connection;
- PostgreSQL: a superuser account is refused (it ignores privileges, and pg_stat_reset()
  or pg_read_file() are not writes a read-only transaction would stop);
- every session is read-only (PostgreSQL: `default_transaction_read_only` and every
  transaction `BEGIN READ ONLY`; MySQL: `SET SESSION TRANSACTION READ ONLY` and
  `START TRANSACTION READ ONLY`) and has a statement timeout; every read has a row limit;
- identifiers are quoted by psycopg (`sql.Identifier`) or, for MySQL, by
  `quote_mysql_identifier`, which also allows only plain names; values always travel
  as parameters, never inside the SQL text;
- a query dataset must be one read-only SELECT judged on its syntax tree with a function
  and relation allow-list (connectors.sources.sql_policy); what is sent is that checked
  tree written out again (without comments), as a subquery through protocols that refuse several statements (psycopg's
  extended protocol, PyMySQL without MULTI_STATEMENTS);
- still, the real guard is the database account: give the connector a user that may
  only SELECT what it should index.

Reading: PostgreSQL streams each dataset through a named (server-side) cursor inside one
read-only transaction, PG_ITERSIZE rows per FETCH. MySQL reads pages of MYSQL_PAGE_SIZE
rows by keyset pagination, each page streamed (SSCursor) in its own read-only
transaction: there a statement's timeout covers the whole time its rows stream, which a
slow consumer (the indexer) would exceed. Rows come ordered by the updated-at column
(when set) and the id columns; rows whose id columns hold NULL are skipped.

External ids: f"{dataset}:{id1}|{id2}" with `%`, `|` and `:` percent-escaped in values.
Checkpoint: {"cursors": {dataset: last updated-at value (ISO text or number)},
"datasets": {dataset: fingerprint of its definition}}; a changed definition drops its
cursor, so the next sync reads that dataset in full.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import itertools
import json
import math
import os
import re
import string
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator

from connectors.sources import operator_policy
from connectors.sources.base import (
    DestinationRefused,
    ItemFailure,
    Source,
    SourceConfig,
    SourceDocument,
    SourceError,
    SourceItem,
)
from connectors.sources.db_guard import TargetRefused, check_host_syntax, guard_target
from connectors.sources.sql_policy import SqlRefused, check_select, to_sql

# --- names, templates and queries ----------------------------------------------------------------

#: MySQL names this connector accepts (per part of "schema.table").
MYSQL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
#: Template placeholders: a plain name, no attribute or index access.
PLACEHOLDER = re.compile(r"[^\W\d][\w$]*")
#: Format specs allowed after a placeholder's colon: numbers like {price:.2f} or {n:>5} (no
#: nesting, small widths), and dates like {day:%Y-%m-%d}.
FORMAT_SPEC = re.compile(
    r"(?:[^{}]?[<>=^])?[+\- ]?#?0?(?:\d{1,3})?[,_]?(?:\.\d{1,2})?[bcdeEfFgGnosxX%]?"
    r"|(?=[^%]*%)[%A-Za-z0-9 :/.,_\-]{1,40}"
)
DATASET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: Keys of a document's metadata that metadata columns may not take.
RESERVED_METADATA = frozenset({"dataset", "table", "row"})
MAX_IDENTIFIER_LENGTH = 128
PG_ITERSIZE = 500
MYSQL_PAGE_SIZE = 500
FETCH_CHUNK = 100


def quote_mysql_identifier(name: str, *, qualified: bool = False) -> str:
    """`name` quoted with backticks for MySQL (backticks doubled), after checking every part
    is a plain name; with `qualified`, "schema.table" is allowed. Raise ValueError otherwise."""
    parts = name.split(".") if qualified else [name]
    if qualified and len(parts) > 2:
        raise ValueError(f"{name!r} has too many dots: use table or schema.table")
    for part in parts:
        if not MYSQL_IDENTIFIER.fullmatch(part) or len(part) > 64:
            raise ValueError(
                f"{name!r} is not an allowed MySQL name: use letters, digits, _ and $ "
                "(not starting with a digit, at most 64 characters)"
            )
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def _check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must not be empty")
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(f"{what} {name[:40]!r}… is longer than {MAX_IDENTIFIER_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(f"{what} {name!r} contains control characters")
    if name != name.strip():
        raise ValueError(f"{what} {name!r} starts or ends with spaces")
    return name


def template_fields(template: str) -> list[str]:
    """The column names a template uses; ValueError for anything but plain {name} placeholders."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None
    fields = []
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field:
            raise ValueError("has an empty placeholder {}: name a column, like {title}")
        if not PLACEHOLDER.fullmatch(field):
            raise ValueError(
                f"placeholder {{{field}}} must be a plain column name (no dots, brackets or expressions)"
            )
        if conversion is not None:
            raise ValueError(f"placeholder {{{field}!{conversion}}}: conversions (!r, !s, !a) are not allowed")
        if spec and not FORMAT_SPEC.fullmatch(spec):
            raise ValueError(f"placeholder {{{field}:{spec}}} has an unsupported format")
        fields.append(field)
    return fields


# --- configuration -------------------------------------------------------------------------------


class Dataset(BaseModel):
    """One table/view or SELECT whose rows become documents."""

    model_config = ConfigDict(extra="forbid")

    name: str
    table: str | None = None
    query: str | None = None
    id_columns: list[str] = Field(min_length=1)
    updated_at_column: str | None = None
    title_template: str | None = None
    #: None: every column as "name: value" lines (NULL and binary columns left out).
    text_template: str | None = None
    metadata_columns: list[str] = []
    acl: Literal["connector", "public", "groups", "column"] = "connector"
    acl_groups: list[str] = []
    acl_column: str | None = None
    #: The query as sent: the checked syntax tree written out again (sql_policy.to_sql).
    _runnable: str | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not DATASET_NAME.fullmatch(value):
            raise ValueError(
                "must be 1-64 letters, digits, _, . or - (it is part of every document's id), like customers"
            )
        return value

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = value.split(".")
        if len(parts) > 2:
            raise ValueError("use table or schema.table (a name with dots needs a query dataset)")
        for part in parts:
            _check_identifier(part, "table name")
        return value

    @field_validator("id_columns", "metadata_columns")
    @classmethod
    def _columns(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_identifier(name, "column name")
        if len(set(value)) != len(value):
            raise ValueError("lists a column twice")
        return value

    @field_validator("updated_at_column", "acl_column")
    @classmethod
    def _column(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value, "column name")

    @field_validator("title_template", "text_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        template_fields(value)
        return value

    @field_validator("acl_groups")
    @classmethod
    def _groups(cls, value: list[str]) -> list[str]:
        groups = [group.strip() for group in value if group and group.strip()]
        return sorted(set(groups))

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if (self.table is None) == (self.query is None):
            raise ValueError(f"dataset {self.name}: set exactly one of table or query")
        if self.acl == "groups" and not self.acl_groups:
            raise ValueError(f"dataset {self.name}: acl 'groups' needs acl_groups")
        if self.acl != "groups" and self.acl_groups:
            raise ValueError(f"dataset {self.name}: acl_groups is only used with acl 'groups'")
        if self.acl == "column" and not self.acl_column:
            raise ValueError(f"dataset {self.name}: acl 'column' needs acl_column")
        if self.acl != "column" and self.acl_column:
            raise ValueError(f"dataset {self.name}: acl_column is only used with acl 'column'")
        clash = RESERVED_METADATA.intersection(self.metadata_columns)
        if clash:
            raise ValueError(
                f"dataset {self.name}: metadata column {sorted(clash)[0]} clashes with a built-in metadata key; "
                "rename it with AS in a query dataset"
            )
        return self

    # --- helpers ---
    @property
    def table_parts(self) -> tuple[str, ...]:
        return tuple(self.table.split(".")) if self.table else ()

    def what(self) -> str:
        return f"table {self.table}" if self.table else f"the query of dataset {self.name}"

    def referenced_columns(self) -> list[tuple[str, str]]:
        """(column, what uses it), in a stable order."""
        refs = [(c, "id column") for c in self.id_columns]
        if self.updated_at_column:
            refs.append((self.updated_at_column, "updated-at column"))
        if self.title_template:
            refs += [(c, "title template") for c in template_fields(self.title_template)]
        if self.text_template:
            refs += [(c, "text template") for c in template_fields(self.text_template)]
        refs += [(c, "metadata column") for c in self.metadata_columns]
        if self.acl_column:
            refs.append((self.acl_column, "ACL column"))
        return refs


class DatabaseConfig(SourceConfig):
    """Connection settings shared by the database kinds."""

    host: str
    port: int = Field(ge=1, le=65535)
    database: str
    user: str
    password: SecretStr = SecretStr("")
    connect_timeout_s: int = Field(10, ge=1, le=300)
    statement_timeout_s: int = Field(30, ge=1, le=3600)
    max_rows_per_dataset: int = Field(100_000, ge=1, le=10_000_000)
    datasets: list[Dataset] = Field(min_length=1)

    #: Which dialect's rules check names and queries (set by each kind's Config).
    mysql_rules: ClassVar[bool] = False

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host_syntax(value)  # a TargetRefused is a ValueError: shown next to the field

    @field_validator("database", "user")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_identifier(value.strip(), "name")

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, datasets: list[Dataset]) -> list[Dataset]:
        """Checked here rather than on the whole config, so a form shows the problem next to
        the datasets field."""
        names = [ds.name for ds in datasets]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"dataset names must be unique: {', '.join(duplicates)} is used twice")
        for ds in datasets:
            if ds.query is not None:
                dialect = "mysql" if cls.mysql_rules else "postgres"
                try:
                    ds._runnable = to_sql(check_select(ds.query, dialect), dialect)
                except SqlRefused as exc:
                    raise ValueError(f"dataset {ds.name}: the query {exc}") from None
                ds.query = ds.query.strip()
            if cls.mysql_rules:
                try:
                    if ds.table:
                        quote_mysql_identifier(ds.table, qualified=True)
                    for column in ds.id_columns + [c for c in [ds.updated_at_column] if c]:
                        quote_mysql_identifier(column)
                except ValueError as exc:
                    raise ValueError(f"dataset {ds.name}: {exc}") from None
        return datasets


# --- values ----------------------------------------------------------------------------------------

_BINARY = (bytes, bytearray, memoryview)


def _display(value: Any) -> str:
    """A value as text in a document (title, text, location)."""
    if value is None or isinstance(value, _BINARY):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value if v is not None)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _json_value(value: Any) -> Any:
    """A value as JSON-serialisable metadata."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, _BINARY):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _id_text(value: Any) -> str:
    if isinstance(value, _BINARY):
        return bytes(value).hex()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return _display(value)


def _escape_id(text: str) -> str:
    return text.replace("%", "%25").replace("|", "%7C").replace(":", "%3A")


def _unescape_id(text: str) -> str:
    return text.replace("%3A", ":").replace("%7C", "|").replace("%25", "%")


def _cursor_json(value: Any) -> Any:
    """An updated-at value as it is stored in the checkpoint: ISO text or a number."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    return _display(value)


def _later(a: Any, b: Any) -> bool:
    try:
        return a > b
    except TypeError:
        return True


def _aware(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def _parse_groups(value: Any) -> tuple[str, ...]:
    """Group names from an ACL column: an array, a JSON array, or comma-separated text."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                value = text.strip("[]").split(",")
        else:
            value = text.split(",")
    elif not isinstance(value, (list, tuple)):
        value = [value]
    names = {_display(v).strip().strip('"').strip() for v in value if v is not None}
    return tuple(sorted(name for name in names if name))


def render_template(template: str, row: Mapping[str, Any]) -> str:
    """Fill {column} placeholders from the row (NULL as empty text), without str.format's
    attribute or index access."""
    out = []
    for literal, field, spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        value = row[field]
        if spec and value is not None and not isinstance(value, _BINARY):
            try:
                out.append(format(value, spec))
                continue
            except (ValueError, TypeError):
                pass
        out.append(_display(value))
    return "".join(out)


def _fingerprint(config: DatabaseConfig, ds: Dataset) -> str:
    """Changes whenever the rows a dataset selects or the documents they become change."""
    basis = {
        "server": [config.host, config.port, config.database],
        "dataset": ds.model_dump(mode="json", exclude={"name"}),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def _first_line(message: str) -> str:
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return line.removeprefix("ERROR:").removeprefix("FATAL:").strip()


# --- SQL building ----------------------------------------------------------------------------------


class _Cond:
    """A WHERE condition, rendered by a dialect; values always as parameters."""

    def __init__(self, kind: str, columns: list[str], values: list[Any] | None = None):
        self.kind, self.columns, self.values = kind, columns, values or []


def _not_null(column: str) -> _Cond:
    return _Cond("not_null", [column])


def _is_null(column: str) -> _Cond:
    return _Cond("is_null", [column])


def _greater(column: str, value: Any) -> _Cond:
    return _Cond("greater", [column], [value])


def _after(columns: list[str], values: list[Any]) -> _Cond:
    """The row-value comparison (c1, c2, ...) > (v1, v2, ...): keyset pagination."""
    return _Cond("after", columns, values)


def _matches(columns: list[str], rows: list[list[Any]]) -> _Cond:
    return _Cond("matches", columns, rows)


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
        from psycopg import sql

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


# --- the sources -----------------------------------------------------------------------------------

Rows = Iterator[dict[str, Any]]


class _RowStream:
    """Rows of one SELECT as dicts, fetched in batches; `close()` ends its cursor and
    transaction whether or not reading started (a generator's `finally` would not run)."""

    def __init__(self, columns: list[str], fetch_batch, translate, driver_errors, cleanup):
        self.columns = columns
        self._fetch_batch = fetch_batch
        self._translate = translate
        self._driver_errors = driver_errors
        self._cleanup = cleanup
        self._buffer: list = []
        self._done = False

    def __iter__(self) -> _RowStream:
        return self

    def __next__(self) -> dict[str, Any]:
        if not self._buffer:
            if self._done:
                raise StopIteration
            try:
                self._buffer = list(self._fetch_batch())
            except self._driver_errors as exc:
                self.close()
                raise self._translate(exc) from None
            if not self._buffer:
                self.close()
                raise StopIteration
            self._buffer.reverse()
        return dict(zip(self.columns, self._buffer.pop(), strict=True))

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._buffer = []
            self._cleanup()


class _DatabaseSource(Source):
    """What PostgreSQL and MySQL share: datasets, documents, checkpoints, checks."""

    secret_fields = ("password",)
    server_label: ClassVar[str] = ""
    config: DatabaseConfig

    def __init__(self, config: DatabaseConfig):
        super().__init__(config)
        #: Notes for the admin (e.g. a dataset cut off at the row limit); the engine shows them.
        self.warnings: list[str] = []

    # --- what each dialect provides ---
    dialect: _Dialect

    @contextmanager
    def _session(self):
        """A read-only connection with a statement timeout; SourceError when it cannot connect."""
        raise NotImplementedError
        yield

    def _select(self, session, ds: Dataset, **query) -> tuple[list[str], _RowStream]:
        """Run one SELECT (see _Dialect.select) in a read-only transaction: the column names,
        and the rows streamed as dicts (the transaction ends when they are exhausted or closed)."""
        raise NotImplementedError

    def _scalar(self, session, ds: Dataset, **query) -> Any:
        columns, rows = self._select(session, ds, **query)
        try:
            row = next(rows, None)
        finally:
            rows.close()
        return None if row is None else row[columns[0]]

    def _read(self, session, ds: Dataset, after: Any, limit: int) -> Rows:
        """Every row of a dataset for indexing (those with updated-at > `after` when given),
        ordered by updated-at and ids, at most `limit`."""
        conditions = [_not_null(c) for c in ds.id_columns]
        order = list(ds.id_columns)
        if ds.updated_at_column:
            order.insert(0, ds.updated_at_column)
            if after is not None:
                conditions.append(_greater(ds.updated_at_column, self._cursor_param(after)))
        columns, rows = self._select(session, ds, conditions=conditions, order=order, limit=limit)
        try:
            self._verify_columns(ds, columns)
            yield from rows
        finally:
            rows.close()

    def _cursor_param(self, value: Any) -> Any:
        return value

    def _server_version(self, session) -> str:
        """The server's product and version, e.g. "PostgreSQL 15.10"."""
        return self.server_label

    def _guarded_address(self) -> str:
        """The checked address to connect to (see connectors.sources.db_guard), asked again at
        every connection: the operator's policy and the name's DNS answer may have changed."""
        cfg = self.config
        try:
            return guard_target(
                host=cfg.host, port=cfg.port, database=cfg.database, user=cfg.user,
                password=cfg.password.get_secret_value(), policy=operator_policy.current(),
            )
        except TargetRefused as exc:
            if exc.unresolved:
                raise SourceError(
                    f"Cannot reach the database server at {cfg.host}:{cfg.port}: {exc}", permanent=not exc.transient
                ) from None
            raise DestinationRefused(str(exc), setting=exc.setting) from None

    # --- the Source interface ---
    def check_destination(self) -> None:
        try:
            self._guarded_address()
        except DestinationRefused:
            raise
        except SourceError:
            pass  # the name does not resolve now: every connection checks it again

    def check(self) -> str:
        cfg = self.config
        cap = cfg.max_rows_per_dataset
        parts = []
        with self._session() as session:
            version = self._server_version(session)
            for ds in cfg.datasets:
                columns, rows = self._select(session, ds, limit=0)
                rows.close()
                self._verify_columns(ds, columns)
                count = self._scalar(session, ds, limit=cap + 1, count=True)
                described = f"table {ds.table}" if ds.table else "query"
                if count is not None and count > cap:
                    amount = f"more than {cap:,} rows (only the first {cap:,} are read)"
                else:
                    amount = f"{count or 0:,} row{'s' if count != 1 else ''}"
                parts.append(f"{ds.name} ({described}): {amount}")
        return (
            f"Connected to {version} at {cfg.host}:{cfg.port}, database {cfg.database}, "
            f"as user {cfg.user} (read-only). Datasets: " + "; ".join(parts) + "."
        )

    def preview(self, limit: int = 5) -> list[SourceDocument]:
        """The first `limit` rows of each dataset (by id) as the documents they will become."""
        documents = []
        with self._session() as session:
            for ds in self.config.datasets:
                columns, rows = self._select(session, ds, order=list(ds.id_columns), limit=limit)
                try:
                    self._verify_columns(ds, columns)
                    for row in rows:
                        item = self._document(ds, row)
                        if isinstance(item, SourceDocument):
                            documents.append(item)
                finally:
                    rows.close()
        return documents

    def iter_documents(
        self, since: dict | None = None, previous: Mapping[str, dict] | None = None
    ) -> Iterator[SourceItem]:
        """Rows of every dataset as documents. Datasets with an updated-at column read only
        rows changed after the checkpoint's cursor; `self.checkpoint` follows as rows stream."""
        self.warnings = []
        cfg = self.config
        cursors = self._usable_cursors(since)
        self.checkpoint = {
            "cursors": dict(cursors),
            "datasets": {ds.name: _fingerprint(cfg, ds) for ds in cfg.datasets},
        }
        with self._session() as session:
            for ds in cfg.datasets:
                yield from self._dataset_items(session, ds, cursors.get(ds.name))

    def list_ids(self) -> set[str]:
        ids: set[str] = set()
        with self._session() as session:
            for ds in self.config.datasets:
                columns, rows = self._select(
                    session, ds, columns=list(ds.id_columns), conditions=[_not_null(c) for c in ds.id_columns]
                )
                try:
                    for row in rows:
                        ids.add(self._external_id(ds, row))
                finally:
                    rows.close()
        return ids

    def fetch(self, external_ids: Iterable[str]) -> Iterator[SourceItem]:
        """Read these rows again by id; ids of rows that no longer exist yield nothing."""
        by_dataset: dict[str, list[list[str]]] = {}
        datasets = {ds.name: ds for ds in self.config.datasets}
        for external_id in external_ids:
            name, sep, rest = external_id.partition(":")
            ds = datasets.get(name)
            if not sep or ds is None:
                continue
            values = [_unescape_id(v) for v in rest.split("|")]
            if len(values) == len(ds.id_columns):
                by_dataset.setdefault(name, []).append(values)
        if not by_dataset:
            return
        with self._session() as session:
            for name, wanted in by_dataset.items():
                ds = datasets[name]
                for start in range(0, len(wanted), FETCH_CHUNK):
                    chunk = wanted[start : start + FETCH_CHUNK]
                    columns, rows = self._select(
                        session, ds, conditions=[_matches(list(ds.id_columns), chunk)], limit=len(chunk) * 2
                    )
                    try:
                        self._verify_columns(ds, columns)
                        found = list(rows)
                    finally:
                        rows.close()
                    for row in found:
                        yield self._document(ds, row)

    def estimated_total(self) -> int | None:
        """Rows in all datasets (each counted up to the row limit); None when counting fails."""
        cap = self.config.max_rows_per_dataset
        try:
            with self._session() as session:
                return sum(
                    min(self._scalar(session, ds, limit=cap, count=True) or 0, cap) for ds in self.config.datasets
                )
        except SourceError:
            return None

    # --- reading datasets ---
    def _usable_cursors(self, since: dict | None) -> dict[str, Any]:
        if not isinstance(since, dict):
            return {}
        cursors = since.get("cursors") or {}
        prints = since.get("datasets")
        usable = {}
        for ds in self.config.datasets:
            value = cursors.get(ds.name) if isinstance(cursors, dict) else None
            if not ds.updated_at_column or value is None:
                continue
            if isinstance(prints, dict) and prints.get(ds.name) != _fingerprint(self.config, ds):
                continue  # the dataset changed since that sync: read it in full
            usable[ds.name] = value
        return usable

    def _dataset_items(self, session, ds: Dataset, after: Any) -> Iterator[SourceItem]:
        limit = self.config.max_rows_per_dataset
        rows = self._read(session, ds, after, limit + 1)
        seen: set[str] = set()
        count = duplicates = 0
        cursors = self.checkpoint["cursors"]
        newest = None
        below_newest = after  # the cursor before the newest value's rows (checkpoint form)
        try:
            for row in rows:
                count += 1
                if count > limit:
                    self.warnings.append(
                        f"Dataset {ds.name}: stopped after {limit:,} rows (max_rows_per_dataset); "
                        "the rest was not read this time."
                    )
                    cut = row[ds.updated_at_column] if ds.updated_at_column else None
                    if newest is not None and cut is not None and not _later(cut, newest):
                        # The cut falls among rows sharing one updated-at value: step the cursor
                        # back before them, so the next sync reads the ones left out.
                        if below_newest is None:
                            cursors.pop(ds.name, None)
                        else:
                            cursors[ds.name] = below_newest
                    break
                item = self._document(ds, row)
                if item.external_id in seen:
                    duplicates += 1
                    continue
                seen.add(item.external_id)
                if ds.updated_at_column:
                    value = row[ds.updated_at_column]
                    if value is not None and (newest is None or _later(value, newest)):
                        if newest is not None:
                            below_newest = _cursor_json(newest)
                        newest = value
                        cursors[ds.name] = _cursor_json(value)
                yield item
        finally:
            rows.close()
        if duplicates:
            self.warnings.append(
                f"Dataset {ds.name}: {duplicates:,} rows repeat the id of an earlier row and were skipped; "
                f"choose id columns that identify one row ({', '.join(ds.id_columns)} do not)."
            )

    def _verify_columns(self, ds: Dataset, columns: list[str]) -> None:
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise SourceError(
                f"Dataset {ds.name}: {ds.what()} returns more than one column named {duplicated[0]}; "
                "give each column a distinct name with AS."
            )
        present = set(columns)
        for column, role in ds.referenced_columns():
            if column in present:
                continue
            hint = next((c for c in columns if c.lower() == column.lower()), None)
            hint_text = f" (did you mean {hint}? names are case-sensitive here)" if hint else ""
            raise SourceError(
                f"Dataset {ds.name}: the {role} uses column {column}, which {ds.what()} does not have"
                f"{hint_text}. Its columns: {', '.join(columns)}."
            )

    # --- rows as documents ---
    def _external_id(self, ds: Dataset, row: Mapping[str, Any]) -> str:
        return f"{ds.name}:" + "|".join(_escape_id(_id_text(row[c])) for c in ds.id_columns)

    def _document(self, ds: Dataset, row: Mapping[str, Any]) -> SourceItem:
        external_id = self._external_id(ds, row)
        if len(external_id) > 1024:
            return ItemFailure(external_id[:1024], "The row's id values are too long (over 1,024 characters).")
        ids = [_id_text(row[c]) for c in ds.id_columns]
        title = render_template(ds.title_template, row).strip() if ds.title_template else ""
        title = " ".join(title.split()) or f"{ds.name} {', '.join(ids)}"
        if len(title) > 500:
            title = title[:499] + "…"
        if ds.text_template:
            text = render_template(ds.text_template, row)
        else:
            text = "\n".join(
                f"{column}: {_display(value)}"
                for column, value in row.items()
                if value is not None and not isinstance(value, _BINARY)
            )
        located = ", ".join(f"{c}={v}" for c, v in zip(ds.id_columns, ids, strict=True))
        location = f"{self.config.database}.{ds.table or ds.name} ({located})"[:2048]
        metadata: dict[str, Any] = {
            "dataset": ds.name,
            "table": ds.table,
            "row": {c: _json_value(row[c]) for c in ds.id_columns},
        }
        for column in ds.metadata_columns:
            metadata[column] = _json_value(row[column])
        acl_public: bool | None = None
        acl_groups: tuple[str, ...] | None = None
        if ds.acl == "public":
            acl_public, acl_groups = True, ()
        elif ds.acl == "groups":
            acl_public, acl_groups = False, tuple(ds.acl_groups)
        elif ds.acl == "column":
            acl_public, acl_groups = False, _parse_groups(row[ds.acl_column])
        return SourceDocument(
            external_id=external_id,
            title=title,
            location=location,
            media_type="text/plain",
            text=text,
            modified_at=_aware(row[ds.updated_at_column]) if ds.updated_at_column else None,
            metadata=metadata,
            acl_groups=acl_groups,
            acl_public=acl_public,
        )

    # --- messages ---
    def _scrub(self, message: str) -> str:
        secret = self.config.password.get_secret_value()
        return message.replace(secret, "********") if secret else message

    def _error(self, message: str, *, permanent: bool = True) -> SourceError:
        return SourceError(self._scrub(message), permanent=permanent)

    def _unreachable(self, reason: str) -> SourceError:
        cfg = self.config
        return self._error(f"Cannot reach the database server at {cfg.host}:{cfg.port}: {reason}")

    def _bad_login(self, detail: str = "") -> SourceError:
        detail = f" ({detail})" if detail else ""
        return self._error(
            f"The database refused the user name or password: user {self.config.user} cannot sign in to "
            f"{self.config.host}:{self.config.port}{detail}."
        )

    def _timeout(self, ds: Dataset | None) -> SourceError:
        which = f"Dataset {ds.name}: reading {ds.what()}" if ds else "A statement"
        return self._error(
            f"{which} took longer than the statement timeout of {self.config.statement_timeout_s} s and was "
            "cancelled; raise statement_timeout_s, add an index, or simplify the query.",
            permanent=False,
        )

    def _missing_table(self, ds: Dataset | None, detail: str) -> SourceError:
        if ds is not None and ds.table:
            return self._error(f"Table {ds.table} does not exist in database {self.config.database}.")
        name = ds.name if ds else "?"
        return self._error(f"Dataset {name}: the query uses a table that does not exist ({detail}).")

    def _no_select(self, ds: Dataset | None, detail: str) -> SourceError:
        if ds is not None and ds.table:
            return self._error(f"User {self.config.user} may not read table {ds.table} (no SELECT privilege).")
        name = ds.name if ds else "?"
        return self._error(
            f"User {self.config.user} may not read a table the query of dataset {name} uses "
            f"(no SELECT privilege): {detail}."
        )

    def _writes(self, ds: Dataset | None) -> SourceError:
        name = ds.name if ds else "?"
        return self._error(
            f"Dataset {name}: the query tries to change data, which a read-only connection refuses; "
            "use a plain SELECT."
        )

    def _lost(self, detail: str) -> SourceError:
        cfg = self.config
        return self._error(
            f"The connection to the database at {cfg.host}:{cfg.port} was lost: {detail}", permanent=False
        )


class PostgresSource(_DatabaseSource):
    kind = "postgres"
    label = "PostgreSQL database"
    server_label = "PostgreSQL"

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
        import psycopg

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
        import psycopg

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

    @staticmethod
    def _end(session, cursor) -> None:
        import psycopg

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
        import psycopg
        from psycopg import errors

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


class MySQLSource(_DatabaseSource):
    kind = "mysql"
    label = "MySQL / MariaDB database"
    server_label = "MySQL / MariaDB"

    class Config(DatabaseConfig):
        port: int = Field(3306, ge=1, le=65535)
        mysql_rules: ClassVar[bool] = True

    config: Config

    def __init__(self, config: Config):
        super().__init__(config)
        self.dialect = _MySqlDialect()

    @contextmanager
    def _session(self):
        import pymysql

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

    def _set_timeout(self, cursor) -> None:
        """MySQL: max_execution_time (ms, SELECTs); MariaDB: max_statement_time (s)."""
        import pymysql

        seconds = self.config.statement_timeout_s
        try:
            cursor.execute("SET SESSION max_statement_time = %s", (seconds,))
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != 1193:  # unknown system variable: not MariaDB
                raise
            cursor.execute("SET SESSION max_execution_time = %s", (seconds * 1000,))

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
        import pymysql
        from pymysql.cursors import SSCursor

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

    @staticmethod
    def _end(session, cursor) -> None:
        import pymysql

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


DATABASE_SOURCES: tuple[type[_DatabaseSource], ...] = (PostgresSource, MySQLSource)
__all__ = [
    "Dataset",
    "DatabaseConfig",
    "MySQLSource",
    "PostgresSource",
    "quote_mysql_identifier",
    "render_template",
    "template_fields",
]
