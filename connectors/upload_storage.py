"""Where an upload connector's files are kept: a folder per connector under UPLOAD_ROOT.

Only a folder that is a direct child of UPLOAD_ROOT (both resolved), named by a connector's
UUID and not a link, is ever removed: a name like "..", a link out of the root or a folder of
something else under it is left alone (DESIGN.md's path rules).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings

from connectors.models import Connector

UPLOAD_KIND = "upload"  # the admins' source kind whose files live here
LIBRARY_KIND = "library"  # a user's library: the same files, owned by the user
FILE_KINDS = frozenset({UPLOAD_KIND, LIBRARY_KIND})
#: A folder is made before its connector's row commits (library_create): younger folders
#: without a row are left to the next sweep.
ORPHAN_GRACE = dt.timedelta(hours=1)


def upload_dir_for(connector: Connector) -> Path:
    """The folder that holds a connector's uploaded files (whether or not it exists yet)."""
    return Path(settings.UPLOAD_ROOT) / str(connector.id)


def upload_dir_ensure(connector: Connector) -> Path:
    directory = upload_dir_for(connector)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _removable(connector_id) -> Path | None:
    """The connector's folder if it is one we may delete (see the module's rules), else None."""
    try:
        name = str(uuid.UUID(str(connector_id)))
    except ValueError:
        return None
    directory = Path(settings.UPLOAD_ROOT) / name
    if directory.is_symlink() or not directory.is_dir():
        return None
    if directory.resolve().parent != Path(settings.UPLOAD_ROOT).resolve():
        return None
    return directory


def upload_dir_remove(*, connector_id) -> None:
    """Delete a connector's upload folder (after the connector itself was deleted)."""
    directory = _removable(connector_id)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)  # links inside are removed, never followed


def upload_dirs_orphaned_remove(*, grace: dt.timedelta = ORPHAN_GRACE) -> list[str]:
    """Remove the folders under UPLOAD_ROOT whose connector no longer exists (deleted by a path
    that skipped the services, e.g. a script or an earlier version); returns their names. Beat
    runs it hourly (connectors.tasks.sweep_upload_folders)."""
    root = Path(settings.UPLOAD_ROOT)
    if not root.is_dir():
        return []
    candidates = {entry.name: entry for entry in root.iterdir() if _removable(entry.name) == entry}
    if not candidates:
        return []
    known = {str(pk) for pk in Connector.objects.filter(id__in=list(candidates)).values_list("id", flat=True)}
    oldest = time.time() - grace.total_seconds()
    removed = []
    for name, entry in sorted(candidates.items()):
        if name in known or entry.stat().st_mtime > oldest:
            continue
        upload_dir_remove(connector_id=name)
        removed.append(name)
    return removed
