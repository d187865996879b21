"""Folder connectors for tests: pages written to a folder, then synced by the real engine."""

from __future__ import annotations

from pathlib import Path

from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute


def folder_synced(root: Path, pages: dict[str, str], *, name: str = "Docs") -> Connector:
    """A public folder connector named `name` over `root`, holding `pages` (file name -> text), synced."""
    root.mkdir()
    for file_name, text in pages.items():
        (root / file_name).write_text(text, encoding="utf-8")
    connector = Connector.objects.create(name=name, kind="folder", config={"path": str(root)}, is_public=True)
    sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return connector
