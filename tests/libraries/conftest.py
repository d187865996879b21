"""Libraries for tests: built through the services (checked upload, then the real sync engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from connectors.libraries import library_create, library_files_upload
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute


@pytest.fixture(autouse=True)
def upload_root(settings, tmp_path) -> Path:
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    return settings.UPLOAD_ROOT


@pytest.fixture
def colleague(db) -> User:
    """Someone in no group of the owner's, to share with by name."""
    return User.objects.create_user("colleague", password="colleague-pass-123")


def markdown(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode())


def sync_now(library: Connector) -> SyncRun:
    """Run the library's queued sync here, as a worker would (the index tasks run inline)."""
    run = SyncRun.objects.filter(connector=library, status__in=SyncRun.ACTIVE).first()
    assert run is not None, "no sync was queued"
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, (run.status, run.error)
    return run


def build_library(owner, name: str, files: dict[str, str]) -> Connector:
    library = library_create(owner=owner, name=name)
    result = library_files_upload(library=library, files=[markdown(n, t) for n, t in files.items()])
    assert result.refused == {}, result.refused
    sync_now(library)
    return library
