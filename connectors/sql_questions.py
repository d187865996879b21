"""Questions in SQL over the database connectors a reader may see: what they may query
(`database_describe`) and the governed query itself (`database_query`), each query written to the
audit log. The SQL rules and the rewrite are in connectors/sources/database/ (sql_policy,
governed, questions); this module decides which connectors and datasets a reader may use.

A connector takes part only when its admin ticked "Allow questions in SQL" (config
`sql_questions`) and the reader may see the connector; within it, a dataset whose ACL is
"groups" only for those groups, and a dataset with a group column only for the rows of the
reader's groups. Denied columns never leave the database.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from sqlglot import exp
from django.db.models import Q, QuerySet

from connectors.audit import audit_record
from connectors.models import Connector
from connectors.services import connector_source
from connectors.sources.base import SourceError
from connectors.sources.database.config import Dataset
from connectors.sources.database.governed import GovernedRelation, govern
from connectors.sources.database.questions import (
    QueryResult,
    QuestionFailed,
    dataset_columns,
    dataset_visible,
    relations_for,
    run_governed,
)
from connectors.sources.sql_policy import SqlRefused

SQL_KINDS = ("postgres", "mysql")
#: Seconds the columns read from a database are reused (a query needs them to rewrite).
COLUMNS_TTL = 60.0
_columns_cache: dict[tuple, tuple[float, dict]] = {}
_cache_lock = threading.Lock()


class SqlQuestionError(Exception):
    """What the model should know to try again (never a credential, never a stack trace)."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    columns: list[tuple[str, str]]  # (name, type), denied columns left out
    samples: list[tuple[Any, ...]]  # a few rows, as the reader may see them
    row_count: int | None  # rows the reader may see; None when counting took too long


def sql_connectors_visible(*, groups: list[str], connector_ids: tuple = ()) -> QuerySet[Connector]:
    """Database connectors that allow questions in SQL and that a reader in `groups` may see
    (`connector_ids`: only these, e.g. an assistant's connectors)."""
    connectors = Connector.objects.filter(kind__in=SQL_KINDS, config__sql_questions=True).filter(
        Q(is_public=True) | Q(groups__name__in=groups)
    )
    if connector_ids:
        connectors = connectors.filter(id__in=connector_ids)
    return connectors.distinct().order_by("name")


@dataclass(frozen=True)
class SqlAnswer:
    """A governed query's result and where it came from: what a stored copy of it is re-checked
    against before it is shown again (`queries_permitted`)."""

    result: QueryResult
    connector_id: str
    connector_name: str
    datasets: tuple[str, ...]  # the datasets it read, by name
    access: dict  # query_access: the datasets' ACLs as they were, and the groups the rows were read for


def _connector(*, name: str, groups: list[str], connector_ids: tuple, connector_id=None) -> Connector:
    visible = sql_connectors_visible(groups=groups, connector_ids=connector_ids)
    connector = visible.filter(id=connector_id).first() if connector_id else visible.filter(name=name).first()
    if connector is None and connector_id:
        raise SqlQuestionError("This database source no longer allows you to query it in SQL.")
    if connector is None:  # missing, not allowed or not visible: the same answer
        names = list(sql_connectors_visible(groups=groups, connector_ids=connector_ids).values_list("name", flat=True))
        raise SqlQuestionError(
            f"There is no database source named {name!r} that you may query in SQL. "
            + (f"Use one of: {', '.join(names)}." if names else "No database source allows questions in SQL for you.")
        )
    return connector


def _relations(connector: Connector, source, groups: list[str]) -> tuple[dict[str, GovernedRelation], list[Dataset], dict]:
    datasets = [ds for ds in source.config.datasets if dataset_visible(ds, groups, connector_visible=True)]
    columns = _columns(connector, source)
    return relations_for(datasets, columns), datasets, columns


def _columns(connector: Connector, source) -> dict[str, list[tuple[str, str]]]:
    key = (connector.pk, connector.updated_at)
    now = time.monotonic()
    with _cache_lock:
        cached = _columns_cache.get(key)
        if cached and now - cached[0] < COLUMNS_TTL:
            return cached[1]
    try:
        columns = dataset_columns(source, source.config.datasets, timeout_s=settings.SQL_TOOL_TIMEOUT)
    except (SourceError, QuestionFailed) as exc:
        raise SqlQuestionError(f"The database {connector.name} cannot be read now: {exc}") from None
    with _cache_lock:
        _columns_cache[key] = (now, columns)
    return columns


def _source(connector: Connector):
    try:
        return connector_source(connector)
    except SourceError as exc:
        raise SqlQuestionError(f"The database {connector.name} cannot be used now: {exc}") from None


def database_describe(*, groups: list[str], connector_name: str, connector_ids: tuple = ()) -> list[DatasetInfo]:
    """The datasets of one database a reader may query, with columns, samples and row counts."""
    connector = _connector(name=connector_name, groups=groups, connector_ids=connector_ids)
    source = _source(connector)
    relations, datasets, columns = _relations(connector, source, groups)
    described = []
    for ds in datasets:
        relation = relations.get(ds.name)
        if relation is None:
            continue
        samples = _quietly(source, relation, groups, exp.select(exp.Star()), 3)
        counted = _quietly(source, relation, groups, exp.select(exp.Count(this=exp.Star())), 1)
        described.append(DatasetInfo(
            name=ds.name, description=ds.description,
            columns=[(n, t) for n, t in columns.get(ds.name, []) if n in relation.columns],
            samples=samples or [], row_count=counted[0][0] if counted else None,
        ))
    return described


def _quietly(source, relation: GovernedRelation, groups: list[str], select: exp.Select, rows: int):
    """Rows of a describing query, or None when it fails (a slow count is not worth an error)."""
    sql = select.from_(exp.to_identifier(relation.name, quoted=True)).sql(dialect=source.sql_dialect)
    try:
        governed = govern(sql, source.sql_dialect, {relation.name: relation}, groups=groups, row_limit=rows)
        return run_governed(source, governed, timeout_s=settings.SQL_TOOL_TIMEOUT).rows
    except (SqlRefused, QuestionFailed, SourceError):
        return None


def database_query(*, user, groups: list[str], connector_name: str, sql: str, **options) -> QueryResult:
    """Run the reader's SELECT governed; SqlQuestionError says what to fix. Every attempt is audited."""
    return database_answer(user=user, groups=groups, connector_name=connector_name, sql=sql, **options).result


def database_answer(
    *, user, groups: list[str], sql: str, connector_name: str = "", connector_id=None, connector_ids: tuple = (),
    row_limit: int | None = None, cancelled: threading.Event | None = None, action: str = "sql.query",
) -> SqlAnswer:
    """database_query with where the result came from; `connector_id` instead of a name runs a stored
    query again (a download: `action` "sql.download", `row_limit` SQL_TOOL_DOWNLOAD_ROWS)."""
    connector = _connector(name=connector_name, groups=groups, connector_ids=connector_ids, connector_id=connector_id)
    source = _source(connector)
    relations, datasets, _columns_read = _relations(connector, source, groups)
    started = time.monotonic()
    details: dict[str, Any] = {"sql": sql[:5000]}
    try:
        try:
            governed = govern(sql, source.sql_dialect, relations, groups=groups,
                              row_limit=row_limit or settings.SQL_TOOL_MAX_ROWS)
        except SqlRefused as exc:
            details["refused"] = str(exc)
            names = ", ".join(sorted(relations)) or "(none)"
            raise SqlQuestionError(f"The query was refused: it {exc}. Datasets you may query: {names}.") from None
        details["sql_run"] = governed.sql
        try:
            result = run_governed(source, governed, timeout_s=settings.SQL_TOOL_TIMEOUT, cancelled=cancelled)
        except QuestionFailed as exc:
            details["failed"] = str(exc)
            if exc.timed_out:
                raise SqlQuestionError(
                    f"The query took longer than {settings.SQL_TOOL_TIMEOUT:g} s and was cancelled: "
                    "filter or aggregate more."
                ) from None
            raise SqlQuestionError(f"The database refused the query: {exc}") from None
        except SourceError as exc:
            details["failed"] = str(exc)
            raise SqlQuestionError(f"The database {connector.name} cannot be reached now: {exc}") from None
        details.update(rows=len(result.rows), truncated=result.truncated)
        return SqlAnswer(result=result, connector_id=str(connector.pk), connector_name=connector.name,
                         datasets=governed.relations, access=query_access(datasets, governed.relations, groups))
    finally:
        details["ms"] = int((time.monotonic() - started) * 1000)
        audit_record(actor=user, action=action, target=connector, details=details)


# --- a stored result, shown again ------------------------------------------------------------------


def _dataset_access(ds: Dataset) -> dict:
    return {"acl": ds.acl, "acl_column": ds.acl_column or "", "denied": sorted({c.lower() for c in ds.denied_columns})}


def query_access(datasets: list[Dataset], used: tuple[str, ...], groups: list[str]) -> dict:
    """What a result was read under: each dataset's ACL and denied columns, and (where rows are
    filtered by a group column) the reader's groups."""
    read = [ds for ds in datasets if ds.name in used]
    by_row = any(ds.acl == "column" for ds in read)
    return {"datasets": {ds.name: _dataset_access(ds) for ds in read}, "groups": sorted(groups) if by_row else []}


def _still_allowed(access: dict, datasets: dict[str, Dataset], groups: set[str]) -> bool:
    """Whether a reader in `groups` may still see a result read under `access`: every dataset it
    read still exists and is theirs to query, under the same ACL, with no column denied since,
    and rows filtered by group were read for groups the reader still has."""
    if not isinstance(access, dict) or not isinstance(access.get("datasets"), dict):
        return False
    for name, then in access["datasets"].items():
        ds = datasets.get(name)
        if ds is None or not isinstance(then, dict) or not dataset_visible(ds, groups, connector_visible=True):
            return False
        now = _dataset_access(ds)
        if (now["acl"], now["acl_column"]) != (then.get("acl"), then.get("acl_column")):
            return False
        if set(now["denied"]) - set(then.get("denied") or []):
            return False
        if ds.acl == "column" and not set(access.get("groups") or []) <= groups:
            return False
    return True


def _config_datasets(connector: Connector) -> dict[str, Dataset]:
    found = {}
    for raw in (connector.config or {}).get("datasets") or []:
        try:
            ds = Dataset.model_validate(raw)
        except ValueError:  # a dataset that no longer validates is no longer queried
            continue
        found[ds.name] = ds
    return found


def queries_permitted(*, groups: list[str], queries: list[dict]) -> set[str]:
    """The ids of the stored queries (each {"query_id", "connector_id", "access"}) that a reader in
    `groups` may still see: the connector still allows questions in SQL and is theirs to see, and
    every dataset read passes `_still_allowed`. One query for all of them; the databases are not read."""
    ids = {str(q.get("connector_id")) for q in queries if _is_uuid(q.get("connector_id"))}
    connectors = {str(c.pk): c for c in sql_connectors_visible(groups=groups).filter(id__in=ids)} if ids else {}
    datasets = {key: _config_datasets(c) for key, c in connectors.items()}
    reader = set(groups)
    return {
        str(q.get("query_id")) for q in queries
        if str(q.get("connector_id")) in connectors
        and _still_allowed(q.get("access"), datasets[str(q.get("connector_id"))], reader)
    }


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
