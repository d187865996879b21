"""Answers to "why isn't X in the index?" for one connector and one source item.

The answer walks the pipeline backwards: is there a document, is it embedded, did a
recent sync fail on the item, does the source list it at all (and if it does not,
what usually hides an item from this kind of source).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from connectors.index_version import live_index
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


# Translated lazily, when a page shows them; "%(supported)s" is filled in at that time.
_EXTENSION_HINT = gettext_lazy(
    "Its extension is not one the parsers read (supported: %(supported)s), "
    "or not in this connector's list of extensions."
)
_FOLDER_HINTS = [
    _EXTENSION_HINT,
    gettext_lazy(
        "Hidden files and folders (names starting with a dot) are skipped unless the connector includes them."
    ),
    gettext_lazy("It lies outside the folder, or behind a link that points outside it."),
    gettext_lazy("It sits in a sub-folder and the connector does not read sub-folders."),
    gettext_lazy("It is larger than the connector's size limit (such files show up as failures of a sync)."),
]
_UPLOAD_HINTS = [
    gettext_lazy("It was never uploaded into this connector, or it was deleted."),
    gettext_lazy("Uploaded names are normalised: spaces become underscores and unusual characters are dropped."),
]
_WEB_HINTS = [
    gettext_lazy("It is not reached from the start pages within the crawl's depth or page limits."),
    gettext_lazy("robots.txt disallows it, or it lies outside the allowed sites or path prefix."),
    gettext_lazy("The server answered with an error, a redirect elsewhere or a type that is not indexed."),
]
_DATABASE_HINTS = [
    gettext_lazy("The row is filtered out by the dataset's query (its WHERE clause) or no longer exists."),
    gettext_lazy("The dataset it belongs to is missing from the connector's settings, or was renamed."),
    gettext_lazy("The id is written differently: external ids have the form <dataset>:<key>."),
]
_GENERIC_HINTS = [
    gettext_lazy("Check the id's spelling: it must be written exactly as the source names the item."),
]


def _render_hints(hints) -> list[str]:
    supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
    return [str(hint) % {"supported": supported} if hint is _EXTENSION_HINT else str(hint) for hint in hints]


def _hints_for(connector: Connector) -> list[str]:
    kind = connector.kind
    if kind == "upload":
        return _render_hints([*_UPLOAD_HINTS, _EXTENSION_HINT])
    if kind == "folder":
        return _render_hints(_FOLDER_HINTS)
    if kind in ("web", "website", "crawler", "intranet"):
        return _render_hints(_WEB_HINTS)
    from connectors.sources.registry import SOURCES

    module = getattr(SOURCES.get(kind), "__module__", "")
    if module.endswith(".database") or "sql" in kind or kind in ("postgres", "mariadb", "database", "db"):
        return _render_hints(_DATABASE_HINTS)
    return _render_hints(_GENERIC_HINTS)


def _trigger_label(run: SyncRun) -> str:
    """How a run was started, in lower case, for the middle of a sentence."""
    labels = {
        SyncRun.Trigger.MANUAL: pgettext("how a sync was started", "manual"),
        SyncRun.Trigger.SCHEDULE: pgettext("how a sync was started", "schedule"),
        SyncRun.Trigger.REINDEX: pgettext("how a sync was started", "re-index"),
    }
    return labels.get(run.trigger) or run.get_trigger_display().lower()


def _active_state(run: SyncRun) -> str:
    """The state of an active run, in lower case, for "a sync is … now"."""
    states = {
        SyncRun.Status.QUEUED: pgettext("a sync is … now", "queued"),
        SyncRun.Status.RUNNING: pgettext("a sync is … now", "running"),
    }
    return states.get(run.status) or run.get_status_display().lower()


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
        return _("The id points outside the connector's folder; only files inside it are read.")
    path = os.path.join(root, *parts)
    if not os.path.lexists(path):
        return _("There is no file %(id)s in %(folder)s.") % {"id": external_id, "folder": root}
    if os.path.islink(path):
        real_root = os.path.realpath(root)
        target = os.path.realpath(path)
        if not (target == real_root or target.startswith(real_root.rstrip(os.sep) + os.sep)):
            return _("The file is a link that points outside the folder; such links are never followed.")
    if os.path.isdir(path):
        return _("%(id)s is a folder, not a file: its files have ids like %(id)s/name.pdf.") % {"id": external_id}
    include_hidden = config.get("include_hidden", False) and connector.kind != "upload"
    if any(part.startswith(".") for part in parts) and not include_hidden:
        return _("Its name, or a folder on its path, starts with a dot: hidden files are skipped.")
    recursive = config.get("recursive", True) and connector.kind != "upload"
    if len(parts) > 1 and not recursive:
        return _("It is in a sub-folder, and this connector does not read sub-folders.")
    ext = os.path.splitext(parts[-1])[1].lower()
    allowed = config.get("extensions") or sorted(SUPPORTED_EXTENSIONS)
    if ext not in allowed:
        if ext:
            return _("%(extension)s files are not read by this connector (it reads %(extensions)s).") % {
                "extension": ext, "extensions": ", ".join(allowed),
            }
        return _("Files without an extension are not read by this connector (it reads %(extensions)s).") % {
            "extensions": ", ".join(allowed),
        }
    if parts[-1].startswith("~$"):
        return _("It is an office program's lock file, which is always skipped.")
    return None


def explain_missing(connector: Connector, external_id: str) -> Explanation:
    """Why the item `external_id` of `connector` is, or is not, in the index."""
    external_id = normalize_external_id(connector, external_id)
    if not external_id:
        return Explanation(Status.EMPTY, _("Enter the id of an item, e.g. a file's path inside the folder."))

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
            _("A sync could not index %(id)s: %(reason)s") % {"id": external_id, "reason": failure.reason},
            [
                _("Sync of %(when)s (%(trigger)s).") % {
                    "when": f"{failure.run.created_at:%Y-%m-%d %H:%M}", "trigger": _trigger_label(failure.run),
                },
                _("Fix the cause in the source, then run a sync: it tries failed items again."),
            ],
            failure=failure,
        )

    try:
        listed = external_id in connector_source(connector).list_ids()
    except SourceError as exc:
        return Explanation(
            Status.SOURCE_ERROR,
            _("The source could not be asked whether it holds %(id)s: %(error)s") % {"id": external_id, "error": exc},
            [_("Use “Test connection” on the connector's page, fix what it reports, then sync.")],
        )

    if not listed:
        details = []
        if connector.kind in ("folder", "upload"):
            reason = _folder_reason(connector, external_id)
            if reason:
                details.append(reason)
        if not details:
            details = _hints_for(connector)
        return Explanation(Status.NOT_LISTED, _("The source does not list %(id)s.") % {"id": external_id}, details)

    active = next((run for run in recent_runs if run.status in SyncRun.ACTIVE), None)
    if active is not None:
        return Explanation(
            Status.NOT_SYNCED,
            _("The source lists %(id)s, and a sync is %(state)s now.") % {
                "id": external_id, "state": _active_state(active),
            },
            [_("It should appear when this sync finishes.")],
        )
    details = [_("Run a sync: it will read the item and index it.")]
    if connector.is_paused:
        details.append(_("This connector is paused, so scheduled syncs do not run."))
    elif connector.sync_interval is None:
        details.append(_("This connector syncs only on demand."))
    return Explanation(
        Status.NOT_SYNCED,
        _("The source lists %(id)s, but it has not been synced yet.") % {"id": external_id},
        details,
    )


def _explain_document(document: Document) -> Explanation:
    if document.acl_public:
        visibility = _("Visible in answers to everyone.")
    elif document.acl_groups:
        visibility = _("Visible in answers to members of %(groups)s.") % {"groups": ", ".join(document.acl_groups)}
    else:
        visibility = _("Visible in answers to nobody (no group has access).")
    if document.index_status == Document.IndexStatus.INDEXED:
        chunks = document.chunks.filter(index_version=live_index().number).count()
        return Explanation(
            Status.INDEXED,
            ngettext(
                "%(id)s is indexed as “%(title)s” (%(count)s chunk).",
                "%(id)s is indexed as “%(title)s” (%(count)s chunks).",
                chunks,
            ) % {"id": document.external_id, "title": document.title, "count": chunks},
            [visibility, _("Last indexed %(when)s.") % {"when": f"{document.indexed_at:%Y-%m-%d %H:%M}"}],
            document=document,
        )
    if document.index_status == Document.IndexStatus.FAILED:
        return Explanation(
            Status.INDEX_FAILED,
            _("%(id)s was read, but embedding it failed: %(error)s") % {
                "id": document.external_id, "error": document.index_error or _("no reason recorded"),
            },
            [_("Run a sync or re-index to try again."), visibility],
            document=document,
        )
    run = document.pending_run
    if run is not None and run.status in SyncRun.ACTIVE:
        details = [_("A sync is running; the document is embedded before it finishes.")]
    else:
        details = [_("No sync is embedding it now: run a sync or re-index to finish it.")]
    return Explanation(
        Status.PENDING,
        _("%(id)s was read and is waiting to be embedded.") % {"id": document.external_id},
        details + [visibility],
        document=document,
    )
