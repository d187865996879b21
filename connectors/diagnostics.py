"""Answers to "why isn't X in the index?" for one connector and one source item.

The answer walks the pipeline backwards: is there a document, is it embedded, did a
recent sync fail on the item, does the source list it at all (and if it does not,
what usually hides an item from this kind of source).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from connectors.models import Connector, Document, SyncFailure, SyncRun
from connectors.parsing import SUPPORTED_EXTENSIONS
from connectors.services import connector_source
from connectors.sources.base import SourceError

#: How many of the latest runs are searched for a failure on the item.
RECENT_RUNS = 10


class Status:
    INDEXED = "indexed"
    PENDING = "pending"
    INDEX_FAILED = "index_failed"
    SYNC_FAILED = "sync_failed"
    NOT_LISTED = "not_listed"
    NOT_SYNCED = "not_synced"
    SOURCE_ERROR = "source_error"
    EMPTY = "empty"


@dataclass
class Explanation:
    status: str
    message: str
    details: list[str] = field(default_factory=list)
    document: Document | None = None
    failure: SyncFailure | None = None

    @property
    def is_ok(self) -> bool:
        return self.status == Status.INDEXED


_FOLDER_HINTS = [
    "Its extension is not one the parsers read (supported: {supported}), "
    "or not in this connector's list of extensions.",
    "Hidden files and folders (names starting with a dot) are skipped unless the connector includes them.",
    "It lies outside the folder, or behind a link that points outside it.",
    "It sits in a sub-folder and the connector does not read sub-folders.",
    "It is larger than the connector's size limit (such files show up as failures of a sync).",
]
_UPLOAD_HINTS = [
    "It was never uploaded into this data source, or it was deleted.",
    "Uploaded names are normalised: spaces become underscores and unusual characters are dropped.",
]
_WEB_HINTS = [
    "It is not reached from the start pages within the crawl's depth or page limits.",
    "robots.txt disallows it, or it lies outside the allowed sites or path prefix.",
    "The server answered with an error, a redirect elsewhere or a type that is not indexed.",
]
_DATABASE_HINTS = [
    "The row is filtered out by the dataset's query (its WHERE clause) or no longer exists.",
    "The dataset it belongs to is missing from the connector's settings, or was renamed.",
    "The id is written differently: external ids have the form <dataset>:<key>.",
]
_GENERIC_HINTS = ["Check the id's spelling: it must be written exactly as the source names the item."]


def _hints_for(connector: Connector) -> list[str]:
    kind = connector.kind
    supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
    if kind == "upload":
        return _UPLOAD_HINTS + [_FOLDER_HINTS[0].format(supported=supported)]
    if kind == "folder":
        return [hint.format(supported=supported) for hint in _FOLDER_HINTS]
    if kind in ("web", "website", "crawler", "intranet"):
        return list(_WEB_HINTS)
    from connectors.sources.registry import SOURCES

    module = getattr(SOURCES.get(kind), "__module__", "")
    if module.endswith(".database") or "sql" in kind or kind in ("postgres", "mariadb", "database", "db"):
        return list(_DATABASE_HINTS)
    return list(_GENERIC_HINTS)


def normalize_external_id(connector: Connector, external_id: str) -> str:
    """Accept what an admin is likely to paste: for folders, an absolute path or ./name."""
    value = (external_id or "").strip()
    if connector.kind in ("folder", "upload") and value:
        root = str((connector.config or {}).get("path") or "")
        value = value.replace("\\", "/")
        if root and os.path.isabs(value):
            normalized = os.path.normpath(value)
            if normalized.startswith(root.rstrip("/") + "/"):
                value = os.path.relpath(normalized, root).replace(os.sep, "/")
        while value.startswith("./"):
            value = value[2:]
    return value


def _folder_reason(connector: Connector, external_id: str) -> str | None:
    """A precise reason a folder or upload source skips an item, when the file is there."""
    config = connector.config or {}
    root = config.get("path")
    if not root:
        return None
    parts = external_id.split("/")
    if ".." in parts or os.path.isabs(external_id):
        return "The id points outside the connector's folder; only files inside it are read."
    path = os.path.join(root, *parts)
    if not os.path.lexists(path):
        return f"There is no file {external_id} in {root}."
    if os.path.islink(path):
        real_root = os.path.realpath(root)
        target = os.path.realpath(path)
        if not (target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)):
            return "The file is a link that points outside the folder; such links are never followed."
    if os.path.isdir(path):
        return f"{external_id} is a folder, not a file: its files have ids like {external_id}/name.pdf."
    include_hidden = config.get("include_hidden", False) and connector.kind != "upload"
    if any(part.startswith(".") for part in parts) and not include_hidden:
        return "Its name, or a folder on its path, starts with a dot: hidden files are skipped."
    recursive = config.get("recursive", True) and connector.kind != "upload"
    if len(parts) > 1 and not recursive:
        return "It is in a sub-folder, and this connector does not read sub-folders."
    ext = os.path.splitext(parts[-1])[1].lower()
    allowed = config.get("extensions") or sorted(SUPPORTED_EXTENSIONS)
    if ext not in allowed:
        what = f"{ext} files are" if ext else "Files without an extension are"
        return f"{what} not read by this connector (it reads {', '.join(allowed)})."
    if parts[-1].startswith("~$"):
        return "It is an office program's lock file, which is always skipped."
    return None


def explain_missing(connector: Connector, external_id: str) -> Explanation:
    """Why the item `external_id` of `connector` is, or is not, in the index."""
    external_id = normalize_external_id(connector, external_id)
    if not external_id:
        return Explanation(Status.EMPTY, "Enter the id of an item, e.g. a file's path inside the folder.")

    document = (
        Document.objects.filter(connector=connector, external_id=external_id)
        .select_related("pending_run")
        .first()
    )
    if document is not None:
        return _explain_document(document)

    recent_runs = list(SyncRun.objects.filter(connector=connector).order_by("-created_at")[:RECENT_RUNS])
    failure = (
        SyncFailure.objects.filter(run__in=recent_runs, external_id=external_id)
        .select_related("run")
        .order_by("-created_at")
        .first()
    )
    if failure is not None:
        return Explanation(
            Status.SYNC_FAILED,
            f"A sync could not index {external_id}: {failure.reason}",
            [
                f"Sync of {failure.run.created_at:%Y-%m-%d %H:%M} ({failure.run.get_trigger_display().lower()}).",
                "Fix the cause in the source, then run a sync: it tries failed items again.",
            ],
            failure=failure,
        )

    try:
        listed = external_id in connector_source(connector).list_ids()
    except SourceError as exc:
        return Explanation(
            Status.SOURCE_ERROR,
            f"The source could not be asked whether it holds {external_id}: {exc}",
            ["Use “Test connection” on the data source's page, fix what it reports, then sync."],
        )

    if not listed:
        details = []
        if connector.kind in ("folder", "upload"):
            reason = _folder_reason(connector, external_id)
            if reason:
                details.append(reason)
        if not details:
            details = _hints_for(connector)
        return Explanation(Status.NOT_LISTED, f"The source does not list {external_id}.", details)

    active = next((run for run in recent_runs if run.status in SyncRun.ACTIVE), None)
    if active is not None:
        return Explanation(
            Status.NOT_SYNCED,
            f"The source lists {external_id}, and a sync is {active.get_status_display().lower()} now.",
            ["It should appear when this sync finishes."],
        )
    details = ["Run a sync: it will read the item and index it."]
    if connector.is_paused:
        details.append("This data source is paused, so scheduled syncs do not run.")
    elif connector.sync_interval is None:
        details.append("This data source syncs only on demand.")
    return Explanation(Status.NOT_SYNCED, f"The source lists {external_id}, but it has not been synced yet.", details)


def _explain_document(document: Document) -> Explanation:
    acl = "everyone" if document.acl_public else (
        "members of " + ", ".join(document.acl_groups) if document.acl_groups else "nobody (no group has access)"
    )
    visibility = f"Visible in answers to {acl}."
    if document.index_status == Document.IndexStatus.INDEXED:
        chunks = document.chunks.count()
        return Explanation(
            Status.INDEXED,
            f"{document.external_id} is indexed as “{document.title}” ({chunks} chunk{'' if chunks == 1 else 's'}).",
            [visibility, f"Last indexed {document.indexed_at:%Y-%m-%d %H:%M}."],
            document=document,
        )
    if document.index_status == Document.IndexStatus.FAILED:
        return Explanation(
            Status.INDEX_FAILED,
            f"{document.external_id} was read, but embedding it failed: {document.index_error or 'no reason recorded'}",
            ["Run a sync or re-index to try again.", visibility],
            document=document,
        )
    run = document.pending_run
    if run is not None and run.status in SyncRun.ACTIVE:
        details = ["A sync is running; the document is embedded before it finishes."]
    else:
        details = ["No sync is embedding it now: run a sync or re-index to finish it."]
    return Explanation(
        Status.PENDING,
        f"{document.external_id} was read and is waiting to be embedded.",
        details + [visibility],
        document=document,
    )
