"""Questions in SQL over a database connector's datasets: which datasets a reader may query and
with which columns, and running the governed query (governed.py) on the connector's own account,
in a read-only transaction, under a timeout and a row cap, cancelled on the server on request.

    relations = relations_for(source, datasets)             # columns read from the server, denied ones left out
    governed = govern(sql, source.sql_dialect, relations, groups=groups, row_limit=200)
    result = run_governed(source, governed, timeout_s=5, cancelled=stop_event)

Plain Python, no Django: which datasets a user may see (the connector's ACL) is decided by the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from connectors.sources.database.config import Dataset
from connectors.sources.database.governed import GovernedQuery, GovernedRelation
from connectors.sources.database.source import QuestionFailed, _DatabaseSource

#: The most a question's result may weigh (its values' bytes, roughly) before it is refused.
RESULT_MAX_BYTES = 20_000_000

__all__ = ["QueryResult", "QuestionFailed", "dataset_columns", "dataset_visible", "relations_for", "run_governed"]


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # more rows than the cap: only the first `row_limit` are here
    sql: str  # what ran
    elapsed_ms: int


def dataset_visible(ds: Dataset, groups: Iterable[str], *, connector_visible: bool) -> bool:
    """Whether a reader in `groups` may query the dataset at all (by-row ACLs then filter rows)."""
    if ds.acl == "connector":
        return connector_visible
    if ds.acl == "groups":
        return bool(set(ds.acl_groups) & set(groups))
    return ds.acl in ("public", "column")


def _probe_sql(source: _DatabaseSource, ds: Dataset) -> str:
    """SELECT * … LIMIT 0 over the dataset: the columns it has, no rows."""
    dialect = source.sql_dialect
    if ds.table:
        parts = ds.table_parts
        relation: exp.Expression = exp.Table(
            this=exp.to_identifier(parts[-1], quoted=True),
            db=exp.to_identifier(parts[0], quoted=True) if len(parts) == 2 else None,
        )
    else:
        relation = exp.Subquery(this=exp.maybe_parse(ds._runnable or ds.query, dialect=dialect),
                                alias=exp.TableAlias(this=exp.to_identifier("dataset")))
    return exp.select(exp.Star()).from_(relation).limit(0).sql(dialect=dialect)


def dataset_columns(source: _DatabaseSource, datasets: Iterable[Dataset], *, timeout_s: float) -> dict[str, list[tuple[str, str]]]:
    """Every column of each dataset as (name, type), denied ones included, read from the server."""
    found: dict[str, list[tuple[str, str]]] = {}
    with source._session() as session:
        for ds in datasets:
            columns, _ = source._run_question(session, _probe_sql(source, ds), timeout_s=timeout_s, max_rows=0,
                                              max_bytes=RESULT_MAX_BYTES)
            found[ds.name] = columns
    return found


def relations_for(datasets: Iterable[Dataset], columns: dict[str, list[tuple[str, str]]]) -> dict[str, GovernedRelation]:
    """The datasets as governed relations: allowed columns only, the row ACL where there is one."""
    relations = {}
    for ds in datasets:
        denied = {c.lower() for c in ds.denied_columns}
        allowed = tuple(name for name, _ in columns.get(ds.name, []) if name.lower() not in denied)
        if not allowed:
            continue
        relations[ds.name] = GovernedRelation(
            name=ds.name,
            columns=allowed,
            table=ds.table_parts,
            query=None if ds.table else (ds._runnable or ds.query),
            row_groups_column=ds.acl_column if ds.acl == "column" else None,
        )
    return relations


def run_governed(
    source: _DatabaseSource, governed: GovernedQuery, *, timeout_s: float, cancelled: threading.Event | None = None,
    max_bytes: int = RESULT_MAX_BYTES,
) -> QueryResult:
    """Run the governed query; QuestionFailed (the server's reason) when it fails, times out or is cancelled."""
    started = time.monotonic()
    with source._session() as session, _cancel_when(cancelled, lambda: source._cancel_running(session)):
        columns, rows = source._run_question(session, governed.sql, timeout_s=timeout_s, max_rows=governed.row_limit + 1,
                                             max_bytes=max_bytes)
    if cancelled is not None and cancelled.is_set():
        raise QuestionFailed("The query was stopped.")
    return QueryResult(
        columns=[name for name, _ in columns],
        types=[kind for _, kind in columns],
        rows=[tuple(row) for row in rows[: governed.row_limit]],
        truncated=len(rows) > governed.row_limit,
        sql=governed.sql,
        elapsed_ms=int((time.monotonic() - started) * 1000),
    )


@contextmanager
def _cancel_when(event: threading.Event | None, cancel: Callable[[], None]) -> Iterator[None]:
    """While the body runs, a watcher cancels the server's statement as soon as `event` is set."""
    if event is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if event.wait(0.05):
                if not done.is_set():
                    try:
                        cancel()
                    except Exception:  # noqa: BLE001 - the statement may have ended meanwhile
                        pass
                return

    watcher = threading.Thread(target=watch, name="sql-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=2)
