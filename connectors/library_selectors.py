"""Libraries (reads): which a user may see or manage, their files with indexing status, and the
room left under the owner's limits. Another user's library is never found, only "no such library"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from connectors.models import Connector, Document, SyncFailure, SyncRun
from connectors.selectors import acl_groups_of, connector_visible_q
from connectors.upload_storage import LIBRARY_KIND
from connectors.uploads import UploadQuota, files_list


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


@dataclass(frozen=True)
class Usage:
    files: int
    bytes: int
    max_files: int
    max_bytes: int


def library_usage(*, owner) -> Usage:
    """What all of `owner`'s libraries hold on disk (what the limits count)."""
    files = size = 0
    for library in Connector.objects.filter(owner=owner, kind=LIBRARY_KIND):
        listing = files_list(library)
        files += len(listing)
        size += sum(info.size for info in listing)
    return Usage(files, size, settings.LIBRARY_MAX_FILES, settings.LIBRARY_MAX_BYTES)


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
