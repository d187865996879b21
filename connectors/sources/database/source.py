"""What both database sources share: checking the destination, streaming rows of each dataset,
turning rows into documents, listing ids for deletions, cursors and checkpoints."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from connectors.sources import operator_policy
from connectors.sources.base import (
    DestinationRefused,
    ItemFailure,
    Source,
    SourceDocument,
    SourceError,
    SourceItem,
)
from connectors.sources.db_guard import TargetRefused, guard_target
from connectors.sources.database.config import DatabaseConfig, Dataset
from connectors.sources.database.sql import FETCH_CHUNK, _greater, _matches, _not_null
from connectors.sources.database.values import (
    _BINARY,
    _aware,
    _cursor_json,
    _display,
    _escape_id,
    _fingerprint,
    _id_text,
    _json_value,
    _later,
    _parse_groups,
    _unescape_id,
    render_template,
)
from connectors.sources.database.dialects import _Dialect


Rows = Iterator[dict[str, Any]]


class QuestionFailed(Exception):
    """A governed query the server refused or cut short; the message is the server's first line
    (credentials scrubbed), for the model to correct its SQL."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


#: Rows read from the server at a time while a question's result is collected.
QUESTION_BATCH = 8


def collect_rows(fetchmany, *, max_rows: int, max_bytes: int) -> list[tuple]:
    """At most `max_rows` rows, read a few at a time; QuestionFailed as soon as their values pass
    `max_bytes` (one SELECT may build huge values: the rows are never all held before they are counted)."""
    rows: list[tuple] = []
    size = 0
    while len(rows) < max_rows:
        batch = fetchmany(min(QUESTION_BATCH, max_rows - len(rows)))
        if not batch:
            break
        for row in batch:
            size += sum(len(value) if isinstance(value, (str, bytes, bytearray)) else 16 for value in row)
        if size > max_bytes:
            raise QuestionFailed(
                f"The result is larger than {max_bytes // 1_000_000} MB: select fewer or shorter columns, "
                "aggregate, or add a LIMIT."
            )
        rows.extend(tuple(row) for row in batch)
    return rows


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
    destination_fields = ("host", "port", "user")
    server_label: ClassVar[str] = ""
    #: The sqlglot dialect of its SQL (sql_policy.Dialect).
    sql_dialect: ClassVar[str] = ""
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
            denied = {c.lower() for c in ds.denied_columns}
            text = "\n".join(
                f"{column}: {_display(row[column])}"
                for column in (ds.text_columns or row.keys())
                if column.lower() not in denied and row[column] is not None and not isinstance(row[column], _BINARY)
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
