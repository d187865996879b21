"""Where an upload connector's files are kept: a folder per connector under UPLOAD_ROOT."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings

from connectors.models import Connector

UPLOAD_KIND = "upload"  # the admins' source kind whose files live here
LIBRARY_KIND = "library"  # a user's library: the same files, owned by the user
FILE_KINDS = frozenset({UPLOAD_KIND, LIBRARY_KIND})


def upload_dir_for(connector: Connector) -> Path:
    """The folder that holds a connector's uploaded files (whether or not it exists yet)."""
    return Path(settings.UPLOAD_ROOT) / str(connector.id)


def upload_dir_ensure(connector: Connector) -> Path:
    directory = upload_dir_for(connector)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def upload_dir_remove(*, connector_id) -> None:
    """Delete a connector's upload folder (after the connector itself was deleted)."""
    directory = Path(settings.UPLOAD_ROOT) / str(connector_id)
    root = Path(settings.UPLOAD_ROOT).resolve()
    if str(connector_id) and directory.resolve().parent == root and directory.is_dir():
        shutil.rmtree(directory, ignore_errors=True)
