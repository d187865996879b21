"""The whole path: a folder synced by the real Celery worker, a question asked over
HTTP to the ASGI app, the answer streamed from the real model server, citing the file."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from connectors.models import Connector, Document, SyncRun
from connectors.services import connector_sync_start
from tests.conftest import wait_for_run
from tests.e2e.sse import ask, login

pytestmark = pytest.mark.e2e


@pytest.fixture
def company_folder(tmp_path):
    root = tmp_path / "company"
    root.mkdir()
    (root / "parking.md").write_text(
        "# Parking rules\n\nVisitors park in the north lot. The north lot gate code is 4471.\n"
    )
    (root / "canteen.md").write_text("# Canteen\n\nThe canteen serves vegetarian lunch every day from noon.\n")
    (root / "printers.txt").write_text("Printer help\n\nThe colour printer on floor 2 is called Kestrel.\n")
    return root


def test_sync_through_the_worker_then_ask_and_get_a_cited_streamed_answer(
    company_folder, celery_worker, app_server, outsider
):
    connector = Connector.objects.create(
        name="Company wiki", kind="folder", config={"path": str(company_folder)}, is_public=True
    )
    run = wait_for_run(connector_sync_start(connector=connector).id)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.added, run.failed) == (3, 0)

    User.objects.create_user("employee", password="employee-pass-123")
    client = login(app_server, "employee", "employee-pass-123")
    _, answer = ask(client, "What is the gate code of the north lot for visitors?")

    assert answer.error is None, answer.error
    assert len(answer.tokens) > 3, "the answer should arrive as several streamed tokens"
    assert answer.done["status"] == "complete"
    cited = {c["title"] for c in answer.done["citations"]}
    assert "Parking rules" in cited, (answer.text, answer.done["citations"])
    parking = Document.objects.get(external_id="parking.md")
    assert any(c["document_id"] == str(parking.id) for c in answer.done["citations"])
    assert 'class="cite"' in answer.done["html"]
