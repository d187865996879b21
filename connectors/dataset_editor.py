"""The dataset editor of the database connector form: what the database offers (tables and views
with their columns, or the columns of a SELECT) and two rows of a dataset as the documents they
will become, from the form's current, unsaved connection settings.

    database_tables(kind="postgres", body={"host": ..., "user": ...}, connector=None)
    database_preview(kind="postgres", body={..., "dataset": {...}}, connector=saved)

Everything goes through the source itself, so the same rules hold as for Test connection and
every sync: the settings are validated by the kind's pydantic config (the single source of truth,
a query dataset checked by sql_policy), the host by the outbound guard (db_guard: never the
product's own database, no private ranges unless allow-listed), the session is read-only with a
statement timeout (capped here). An empty password means the stored one, and only while the host,
port and user are still the saved ones: a stored secret is never sent to another server.
Problems raise EditorInputError naming the field to fix; credentials never appear in answers.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from connectors.models import Connector
from connectors.previews import preview_item, scrub
from connectors.secrets import SecretsError, decrypt_secrets
from connectors.sources.base import SourceError
from connectors.sources.database.catalog import list_relations, preview_documents, query_columns
from connectors.sources.database.questions import QuestionFailed
from connectors.sources.database.source import _DatabaseSource
from connectors.sources.registry import SOURCES

#: Interactive calls wait at most this long, whatever the connector's own timeouts.
EDITOR_CONNECT_TIMEOUT_S = 10
EDITOR_STATEMENT_TIMEOUT_S = 15
PREVIEW_ROWS = 2
#: Settings of the kind that are not about the connection.
NOT_CONNECTION = frozenset({"datasets", "sql_questions", "max_rows_per_dataset"})
#: A stand-in dataset while only the connection matters (the config needs one).
_PROBE = {"name": "probe", "query": "SELECT 1 AS id", "id_columns": ["id"]}

#: Words of a dataset error -> the editor's field it is about (first match wins).
_FIELD_HINTS = (
    (r"\bid columns?\b|\bid_columns\b", "id_columns"),
    (r"updated-at column|updated_at_column", "updated_at_column"),
    (r"title template|title_template", "title_template"),
    (r"text template|text_template|text columns?\b|text_columns", "text"),
    (r"ACL column|acl_column", "acl_column"),
    (r"acl_groups", "acl_groups"),
    (r"denied_columns", "denied_columns"),
    (r"\bthe query\b|\bquery\b", "query"),
    (r"\btable\b", "table"),
    (r"description", "description"),
)
_DATASET_PREFIX = re.compile(r"^(?:Value error, )?[Dd]ataset ([^\s:]+): ")


class EditorInputError(Exception):
    """Input the admin must fix; `field` is a connection setting, `dataset_field` a dataset's field."""

    def __init__(self, message: str, *, field: str | None = None, dataset_field: str | None = None):
        super().__init__(message)
        self.field = field
        self.dataset_field = dataset_field

    def as_json(self) -> dict:
        return {"ok": False, "error": str(self), "field": self.field, "dataset_field": self.dataset_field}


def editor_kinds() -> tuple[str, ...]:
    """The source kinds whose form has the dataset editor (the database kinds)."""
    return tuple(kind for kind, cls in SOURCES.items() if issubclass(cls, _DatabaseSource))


def connection_fields(kind: str) -> list[str]:
    """The settings of a database kind that say where and how to connect (the editor sends these)."""
    return [name for name in SOURCES[kind].Config.model_fields if name not in NOT_CONNECTION]


def dataset_field_of(message: str) -> str | None:
    """Which of a dataset's fields an error message is about, when it says."""
    rest = _DATASET_PREFIX.sub("", message.strip())
    for pattern, field in _FIELD_HINTS:
        if re.search(pattern, rest, re.IGNORECASE):
            return field
    return None


def dataset_name_of(message: str) -> str | None:
    """The dataset an error message names ("dataset customers: ..."), if any."""
    match = _DATASET_PREFIX.match(message.strip())
    return match.group(1) if match else None


def dataset_error_place(loc: str, message: str, datasets: Any) -> dict:
    """Where the editor shows a datasets error: {"dataset": index or None, "field": ..., "message": ...}.
    `loc` is pydantic's place inside datasets ("0.id_columns", "0", or "" for the whole list)."""
    parts = [part for part in loc.split(".") if part]
    index = int(parts[0]) if parts and parts[0].isdigit() else None
    field = parts[1] if len(parts) > 1 else dataset_field_of(message)
    if index is None:
        name = dataset_name_of(message)
        names = [item.get("name") for item in datasets] if isinstance(datasets, list) and all(
            isinstance(item, dict) for item in datasets) else []
        index = names.index(name) if name in names else None
    if field in ("text_template", "text_columns"):
        field = "text"
    return {"dataset": index, "field": field, "message": _tidy(_DATASET_PREFIX.sub("", message.strip()))}


def _tidy(message: str) -> str:
    text = message.strip().removeprefix("Value error, ")
    return text[:1].upper() + text[1:]


# --- building the source -------------------------------------------------------------------------


def _connection(kind: str, body: dict, connector: Connector | None) -> tuple[dict, str]:
    """The connection settings the form holds (empty ones left to their defaults) and the password."""
    fields = SOURCES[kind].Config.model_fields
    settings: dict[str, Any] = {}
    for name in fields:
        if name in NOT_CONNECTION or name == "password":
            continue
        value = body.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, (str, int, bool)):
            raise EditorInputError(f"'{name}' must be text or a number.", field=name)
        settings[name] = value
    password = body.get("password") or ""
    if not isinstance(password, str):
        raise EditorInputError("'password' must be text.", field="password")
    if not password and connector is not None:
        password = _stored_password(connector)
    return settings, password


def _stored_password(connector: Connector) -> str:
    if not connector.encrypted_secrets:
        return ""
    try:
        return str(decrypt_secrets(connector.encrypted_secrets).get("password") or "")
    except SecretsError as exc:
        raise EditorInputError(f"The stored password cannot be read ({exc}); type it again.", field="password") from None


def _same_server(cfg, connector: Connector) -> bool:
    stored = connector.config or {}
    default_port = type(cfg).model_fields["port"].default
    return (
        str(stored.get("host", "")).strip().lower() == cfg.host.lower()
        and int(stored.get("port") or default_port) == cfg.port
        and str(stored.get("user", "")).strip() == cfg.user
    )


def _source(kind: str, body: dict, connector: Connector | None, dataset: dict) -> _DatabaseSource:
    settings, password = _connection(kind, body, connector)
    cls = SOURCES[kind]
    try:
        cfg = cls.Config.model_validate({**settings, "password": password, "datasets": [dataset]})
    except ValidationError as exc:
        raise _validation_error(exc) from None
    typed = bool(body.get("password"))
    if connector is not None and password and not typed and not _same_server(cfg, connector):
        raise EditorInputError(
            "Type the password again: the host, port or user changed since it was saved, and the stored "
            "password is only ever sent to the server it was saved for.",
            field="password",
        )
    cfg.connect_timeout_s = min(cfg.connect_timeout_s, EDITOR_CONNECT_TIMEOUT_S)
    cfg.statement_timeout_s = min(cfg.statement_timeout_s, EDITOR_STATEMENT_TIMEOUT_S)
    return cls(cfg)


def _validation_error(exc: ValidationError) -> EditorInputError:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    message = _tidy(error["msg"])
    if loc and loc[0] == "datasets":
        field = loc[2] if len(loc) > 2 else dataset_field_of(message)
        if field in ("text_template", "text_columns"):
            field = "text"
        return EditorInputError(message, dataset_field=field or None)
    name = loc[0] if loc else None
    return EditorInputError(f"{name}: {message}" if name else message, field=name)


def _source_error(exc: SourceError, password: str) -> EditorInputError:
    message = scrub(str(exc), [password])
    setting = getattr(exc, "setting", "") or None
    return EditorInputError(message, field=setting, dataset_field=None if setting else dataset_field_of(message))


# --- what the endpoints answer -------------------------------------------------------------------


def database_tables(*, kind: str, body: dict, connector: Connector | None) -> dict:
    """{"relations": [...], "message": ...}; with a `query` in the body, {"columns": [...]} of that query."""
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise EditorInputError("'query' must be text.", dataset_field="query")
    probe = {"name": "query", "query": query, "id_columns": ["_"]} if query and query.strip() else _PROBE
    source = _source(kind, body, connector, probe)
    password = source.config.password.get_secret_value()
    try:
        if probe is not _PROBE:
            columns = query_columns(source, source.config.datasets[0], timeout_s=EDITOR_STATEMENT_TIMEOUT_S)
            return {"ok": True, "columns": [{"name": name, "type": kind_} for name, kind_ in columns]}
        relations, truncated = list_relations(source, timeout_s=EDITOR_STATEMENT_TIMEOUT_S)
    except SourceError as exc:
        raise _source_error(exc, password) from None
    except QuestionFailed as exc:  # the server's own words, credentials scrubbed
        raise EditorInputError(scrub(str(exc), [password]), dataset_field="query" if query else None) from None
    cfg = source.config
    tables = sum(1 for r in relations if r.kind == "table")
    return {
        "ok": True,
        "server": f"{cfg.host}:{cfg.port}",
        "database": cfg.database,
        "counts": {"tables": tables, "views": len(relations) - tables},
        "truncated": truncated,
        "relations": [relation.as_json() for relation in relations],
    }


def database_preview(*, kind: str, body: dict, connector: Connector | None) -> dict:
    """The first PREVIEW_ROWS rows of one dataset (by id) as the documents indexing will store."""
    dataset = body.get("dataset")
    if not isinstance(dataset, dict):
        raise EditorInputError("'dataset' must be a JSON object describing one dataset, like the items of datasets.")
    source = _source(kind, body, connector, dataset)
    password = source.config.password.get_secret_value()
    try:
        documents = preview_documents(source, source.config.datasets[0], limit=PREVIEW_ROWS)
    except SourceError as exc:
        raise _source_error(exc, password) from None
    items = [preview_item(document) for document in documents]
    for item in items:
        for key in ("title", "text", "location"):
            item[key] = scrub(item[key], [password])
    return {"ok": True, "documents": items, "denied_columns": list(source.config.datasets[0].denied_columns)}
