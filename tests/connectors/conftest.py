"""The operator's policy for connector tests: the machine's sample database servers on
127.0.0.1 are allow-listed (as an operator would for an intranet server), and folders and
JSON Lines files may be read under pytest's temporary directories and the demo handbook
(as `make run` allows it). Tests of the policy itself override these settings. The sample
database fixtures (tests/connectors/sample_dbs.py) are registered once for all tests in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _operator_policy(settings, tmp_path_factory):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    settings.CONNECTOR_DATA_DIR = [str(tmp_path_factory.getbasetemp()), str(settings.BASE_DIR / "samples" / "handbook")]


@pytest.fixture
def folder(tmp_path):
    """Six short notes in a folder to sync."""
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(6):
        (root / f"note-{i}.md").write_text(f"# Note {i}\n\nMeeting room {i} has {i + 2} chairs and a screen.\n")
    return root


@pytest.fixture
def queued_tasks(monkeypatch):
    """Index tasks handed to the broker, held here instead of run (as if the index workers were busy)."""
    from assistant.celery import app

    held = []
    app.conf.task_always_eager = False
    monkeypatch.setattr("connectors.tasks.index_documents.delay", lambda *args: held.append(args))
    return held
