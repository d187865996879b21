"""A small indexed world (a public handbook, engineering's salary bands) synced by the real sync
engine, cases about it, and the scripted model server that answers them."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from assistant.evaluation.models import EvaluationCase
from connectors.models import Connector, SyncRun
from connectors.sync import sync_run_execute

TRAVEL = {"kind": "document", "connector": "Handbook", "external_id": "travel-2024.md", "title": "Travel policy 2024"}
SALARIES = {"kind": "document", "connector": "Engineering", "external_id": "salaries.md", "title": "Salary bands"}


@pytest.fixture
def knowledge(db, tmp_path, engineering):
    public_dir, secret_dir = tmp_path / "public", tmp_path / "secret"
    public_dir.mkdir()
    secret_dir.mkdir()
    (public_dir / "travel-2024.md").write_text("# Travel policy 2024\n\nTrain travel is first class from 2024.\n")
    (public_dir / "canteen.md").write_text("# Canteen\n\nThe canteen opens at noon and serves vegetarian dishes.\n")
    (secret_dir / "salaries.md").write_text(
        "# Salary bands\n\nThe salary band for a senior engineer is 95,000 to 120,000 euros.\n")
    public = Connector.objects.create(name="Handbook", kind="folder", config={"path": str(public_dir)}, is_public=True)
    secret = Connector.objects.create(name="Engineering", kind="folder", config={"path": str(secret_dir)})
    secret.groups.add(engineering)
    for connector in (public, secret):
        sync_run_execute(SyncRun.objects.create(connector=connector).id)
    return public, secret


def make_case(**fields) -> EvaluationCase:
    defaults = {"question": "What class is train travel in 2024?", "expected_answer": "First class from 2024.",
                "expected_sources": [TRAVEL], "tags": ["travel"]}
    return EvaluationCase.objects.create(**{**defaults, **fields})


def evaluate(*args: str) -> None:
    call_command("evaluate", "cases", *args)
