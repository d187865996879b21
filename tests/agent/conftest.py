"""A small indexed world for the knowledge tools: a public connector and one shared with
engineering, synced by the real sync engine (real parsing, chunking and embeddings)."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from assistant.agent.registry import ToolContext
from connectors.models import Connector, SyncRun
from connectors.search import SearchFilters
from connectors.selectors import acl_groups_of
from connectors.sync import sync_run_execute

OLD = dt.datetime(2023, 3, 1, 12, tzinfo=dt.UTC)
NEW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


def _write(path, text: str, when: dt.datetime) -> None:
    path.write_text(text)
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture
def knowledge(db, tmp_path, engineering):
    public_dir, secret_dir = tmp_path / "public", tmp_path / "secret"
    public_dir.mkdir()
    secret_dir.mkdir()
    _write(public_dir / "travel-2023.md", "# Travel policy 2023\n\nTrain travel is second class in 2023.\n", OLD)
    _write(public_dir / "travel-2024.md", "# Travel policy 2024\n\nTrain travel is first class from 2024.\n", NEW)
    _write(
        secret_dir / "salaries.md",
        "# Salary bands\n\nThe salary band for a senior engineer is 95,000 to 120,000 euros. Travel is paid.\n",
        NEW,
    )
    public = Connector.objects.create(
        name="Handbook", kind="folder", config={"path": str(public_dir)}, is_public=True,
        description="Company policies",
    )
    secret = Connector.objects.create(name="Engineering", kind="folder", config={"path": str(secret_dir)})
    secret.groups.add(engineering)
    for connector in (public, secret):
        sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return public, secret


def context_for(user, *, result_tokens: int = 1500, connectors=()) -> ToolContext:
    filters = SearchFilters(connector_ids=tuple(str(c.id) for c in connectors)) if connectors else None
    return ToolContext(user_id=user.pk, groups=acl_groups_of(user), filters=filters, result_tokens=result_tokens)
