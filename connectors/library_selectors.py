"""Libraries (reads): which a user may see or manage, their files with indexing status, and the
room left under the owner's limits. Another user's library is never found, only "no such library".

A user may be *over* a limit: a successor who took over a departed colleague's libraries
(libraries_handover_preview says so before, Usage.over_limits after), or anyone after an admin
lowered a limit. Nothing they hold is touched; they simply cannot add libraries, files or bytes
until they are back under (connectors.libraries.library_create, connectors.uploads.UploadQuota)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from connectors.models import Connector, Document, SyncFailure, SyncRun
from connectors.selectors import acl_groups_of, connector_visible_q
from connectors.upload_storage import LIBRARY_KIND
from connectors.uploads import UploadQuota, files_list, human_size


def libraries_visible(*, user) -> QuerySet[Connector]:
    """Libraries the user owns or that are shared with them (by group or by name)."""
    if not user.is_authenticated or not user.is_active:
        return Connector.objects.none()
    ids = Connector.objects.filter(kind=LIBRARY_KIND, owner__isnull=False).filter(
        connector_visible_q(acl_groups_of(user))
    ).values("id")
    return (
        Connector.objects.filter(id__in=ids)
        .select_related("owner")
        .annotate(document_count=Count("documents", distinct=True))
        .order_by("name", "id")
    )


def libraries_owned(*, user) -> QuerySet[Connector]:
    return libraries_visible(user=user).filter(owner=user)


def library_get_visible(*, user, library_id) -> Connector:
    """The library if the user may read it; Connector.DoesNotExist otherwise (never a hint)."""
    return libraries_visible(user=user).get(id=library_id)


def library_get_owned(*, user, library_id) -> Connector:
    """The library if the user owns it (only the owner changes it); Connector.DoesNotExist otherwise."""
    return libraries_owned(user=user).get(id=library_id)


#: Each limit on what one user's libraries hold together, and the setting that sets it.
LIMIT_SETTINGS = {"libraries": "LIBRARY_MAX_LIBRARIES", "files": "LIBRARY_MAX_FILES", "bytes": "LIBRARY_MAX_BYTES"}


@dataclass(frozen=True)
class LimitExcess:
    """A limit a user's libraries are over: which one, what they hold, and the limit."""

    limit: str  # "libraries", "files" or "bytes" (LIMIT_SETTINGS)
    used: int
    maximum: int

    @property
    def over_by(self) -> int:
        return self.used - self.maximum

    @property
    def setting(self) -> str:
        return LIMIT_SETTINGS[self.limit]

    def describe(self) -> str:
        """E.g. "7 files, 2 more than the limit of 5", in the active language."""
        if self.limit == "bytes":
            values = {"used": human_size(self.used), "over": human_size(self.over_by),
                      "max": human_size(self.maximum)}
            return _("%(used)s stored, %(over)s more than the limit of %(max)s") % values
        values = {"used": self.used, "over": self.over_by, "max": self.maximum}
        if self.limit == "libraries":
            return _("%(used)s libraries, %(over)s more than the limit of %(max)s") % values
        return _("%(used)s files, %(over)s more than the limit of %(max)s") % values

    def as_dict(self) -> dict:
        """For the audit log."""
        return {"limit": self.limit, "setting": self.setting, "used": self.used, "max": self.maximum,
                "over_by": self.over_by}


@dataclass(frozen=True)
class Usage:
    files: int
    bytes: int
    max_files: int
    max_bytes: int
    libraries: int = 0
    max_libraries: int = 0

    def over_limits(self) -> list[LimitExcess]:
        """The limits these libraries are over (holding exactly the limit is not over it)."""
        pairs = [("libraries", self.libraries, self.max_libraries), ("files", self.files, self.max_files),
                 ("bytes", self.bytes, self.max_bytes)]
        return [LimitExcess(limit, used, maximum) for limit, used, maximum in pairs if used > maximum]


def limits_listed(over: list[LimitExcess]) -> str:
    """For an admin: "7 files, 2 more than the limit of 5 (LIBRARY_MAX_FILES); …"."""
    return "; ".join(f"{excess.describe()} ({excess.setting})" for excess in over)


def _held(libraries) -> tuple[int, int, int]:
    """(libraries, files, bytes) that these libraries hold on disk."""
    count = files = size = 0
    for library in libraries:
        listing = files_list(library)
        count, files, size = count + 1, files + len(listing), size + sum(info.size for info in listing)
    return count, files, size


def _usage(count: int, files: int, size: int) -> Usage:
    return Usage(files, size, settings.LIBRARY_MAX_FILES, settings.LIBRARY_MAX_BYTES,
                 count, settings.LIBRARY_MAX_LIBRARIES)


def library_usage(*, owner) -> Usage:
    """What all of `owner`'s libraries hold on disk (what the limits count)."""
    return _usage(*_held(Connector.objects.filter(owner=owner, kind=LIBRARY_KIND)))


def library_is_shared(library: Connector) -> bool:
    """Whether anyone but its owner may read it (a group or a colleague named)."""
    return library.groups.exists() or library.shared_users.exists()


@dataclass(frozen=True)
class HandoverPreview:
    """What deleting accounts would hand to `successor` (the libraries they shared with others),
    how many of their libraries would be deleted, and the limits the successor would be over."""

    successor: object
    libraries: list[str]
    deleted: int
    usage: Usage | None  # the successor's, after the handover (None without a successor)
    over: list[LimitExcess]

    @property
    def over_listed(self) -> str:
        return limits_listed(self.over)


def libraries_handover_preview(*, owners, successor=None) -> HandoverPreview:
    """What `successor` would hold once the shared libraries of `owners` (accounts about to be
    deleted) are theirs, as libraries_owner_leave does it; without a successor every library goes.
    The handover itself never checks a limit: nothing stored is dropped."""
    leaving = [owner.pk for owner in owners if successor is None or owner.pk != successor.pk]
    libraries = list(Connector.objects.filter(owner_id__in=leaving, kind=LIBRARY_KIND).order_by("name"))
    handed = [lib for lib in libraries if library_is_shared(lib)] if successor is not None else []
    deleted = len(libraries) - len(handed)
    if successor is None:
        return HandoverPreview(None, [], deleted, None, [])
    mine = _held(Connector.objects.filter(owner=successor, kind=LIBRARY_KIND))
    theirs = _held(handed)
    usage = _usage(*(a + b for a, b in zip(mine, theirs)))
    return HandoverPreview(successor, [lib.name for lib in handed], deleted, usage, usage.over_limits())


def library_quota(*, owner, library: Connector) -> UploadQuota:
    usage = library_usage(owner=owner)
    return UploadQuota(
        max_files=usage.max_files, max_bytes=usage.max_bytes, files_used=usage.files, bytes_used=usage.bytes,
        existing={info.name: info.size for info in files_list(library)},
    )


@dataclass(frozen=True)
class LibraryFile:
    name: str
    size: int
    modified_at: dt.datetime
    #: "queued" (waiting for or in its sync), "indexed" (answers may cite it), "failed" (see reason)
    status: str
    reason: str = ""
    document_id: str = ""


def _last_finished_run(library: Connector) -> SyncRun | None:
    return (
        SyncRun.objects.filter(
            connector=library, started_at__isnull=False,
            status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED],
        )
        .order_by("-started_at")
        .first()
    )


def library_files(library: Connector) -> list[LibraryFile]:
    """The library's files with where each stands: a file changed after the last finished sync
    began is "queued"; else its document's state, or the reason that sync gave for failing it."""
    listing = files_list(library)
    names = [info.name for info in listing]
    documents = {
        row["external_id"]: row
        for row in Document.objects.filter(connector=library, external_id__in=names).values(
            "id", "external_id", "index_status", "index_error", "indexed_at"
        )
    }
    last = _last_finished_run(library)
    failures = {}
    if last is not None:
        failures = dict(
            SyncFailure.objects.filter(run=last, external_id__in=names).values_list("external_id", "reason")
        )
    rows = []
    for info in listing:
        modified = dt.datetime.fromtimestamp(info.modified_at, tz=dt.timezone.utc)
        synced = last is not None and last.started_at >= modified
        document = documents.get(info.name)
        status, reason = "queued", ""
        if synced and info.name in failures:
            status, reason = "failed", failures[info.name]
        elif document is not None and (synced or document["indexed_at"] >= modified):
            status = {
                Document.IndexStatus.INDEXED: "indexed", Document.IndexStatus.FAILED: "failed"
            }.get(document["index_status"], "queued")
            reason = document["index_error"] if status == "failed" else ""
        rows.append(
            LibraryFile(
                info.name, info.size, timezone.localtime(modified), status, reason,
                str(document["id"]) if document is not None and status == "indexed" else "",
            )
        )
    return rows


def library_sharing(library: Connector) -> tuple[list[str], list[str]]:
    """(group names, colleagues' usernames) the library is shared with, sorted."""
    groups = sorted(library.groups.values_list("name", flat=True))
    users = sorted(library.shared_users.values_list("username", flat=True))
    return groups, users
