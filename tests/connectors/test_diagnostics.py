"""explain_missing: every answer to "why isn't X in the index?"."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from connectors.diagnostics import Status, explain_missing
from connectors.models import Chunk, Connector, Document, SyncFailure, SyncRun
from connectors.sources.base import Source, SourceConfig, SourceError
from connectors.sources.registry import SOURCES


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    (root / "policies").mkdir(parents=True)
    (root / "leave.md").write_text("# Leave\n\n27 days.\n")
    (root / "policies" / "travel.md").write_text("# Travel\n\nBook trains.\n")
    (root / "tool.exe").write_bytes(b"MZ")
    (root / ".secret.md").write_text("# Hidden\n")
    return root


@pytest.fixture
def connector(db, folder) -> Connector:
    return Connector.objects.create(name="Docs", kind="folder", config={"path": str(folder)}, is_public=True)


def make_document(connector, external_id, status, **extra) -> Document:
    return Document.objects.create(
        connector=connector, external_id=external_id, title=external_id.title(), text="Some text.",
        content_hash=hashlib.sha256(external_id.encode()).hexdigest(), index_status=status, **extra,
    )


def test_an_indexed_document_says_so_with_its_access(connector):
    document = make_document(connector, "leave.md", Document.IndexStatus.INDEXED, acl_groups=["engineering"])
    Chunk.objects.create(document=document, connector=connector, ordinal=0, text="Some text.", start_char=0,
                         end_char=10, token_count=3, embedding=[0.0] * 384)
    answer = explain_missing(connector, "leave.md")
    assert answer.status == Status.INDEXED and answer.is_ok
    assert answer.document == document and "(1 chunk)" in answer.message
    assert "Visible in answers to members of engineering." in answer.details


def test_a_pending_document_is_waiting_for_embedding(connector):
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING)
    make_document(connector, "leave.md", Document.IndexStatus.PENDING, pending_run=run)
    answer = explain_missing(connector, "leave.md")
    assert answer.status == Status.PENDING
    assert "waiting to be embedded" in answer.message
    assert answer.details[0].startswith("A sync is running")
    SyncRun.objects.filter(id=run.id).update(status=SyncRun.Status.FAILED)
    assert explain_missing(connector, "leave.md").details[0].startswith("No sync is embedding it now")


def test_a_failed_embedding_gives_its_error(connector):
    make_document(connector, "leave.md", Document.IndexStatus.FAILED, index_error="The embedding server timed out.")
    answer = explain_missing(connector, "leave.md")
    assert answer.status == Status.INDEX_FAILED
    assert "The embedding server timed out." in answer.message


def test_a_recent_sync_failure_gives_its_reason_and_when(connector):
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    failure = SyncFailure.objects.create(run=run, external_id="scan.pdf", reason="The PDF has no text layer (a scan).")
    answer = explain_missing(connector, "scan.pdf")
    assert answer.status == Status.SYNC_FAILED and answer.failure == failure
    assert answer.message == "A sync could not index scan.pdf: The PDF has no text layer (a scan)."
    assert f"{run.created_at:%Y-%m-%d %H:%M}" in answer.details[0]


def test_an_old_failure_beyond_the_recent_runs_is_not_blamed(connector):
    old = SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    SyncFailure.objects.create(run=old, external_id="leave.md", reason="old problem")
    for _ in range(10):
        SyncRun.objects.create(connector=connector, status=SyncRun.Status.SUCCEEDED)
    assert explain_missing(connector, "leave.md").status == Status.NOT_SYNCED


@pytest.mark.parametrize(
    ("external_id", "reason"),
    [
        ("tool.exe", ".exe files are not read by this connector"),
        (".secret.md", "starts with a dot: hidden files are skipped"),
        ("minutes.md", "There is no file minutes.md in"),
        ("policies", "is a folder, not a file"),
        ("../outside.md", "points outside the connector's folder"),
    ],
)
def test_a_folder_item_the_source_does_not_list_gets_the_precise_reason(connector, external_id, reason):
    answer = explain_missing(connector, external_id)
    assert answer.status == Status.NOT_LISTED
    assert answer.message == f"The source does not list {external_id}."
    assert any(reason in line for line in answer.details), answer.details


def test_a_sub_folder_is_skipped_when_not_recursive(connector):
    connector.config = {**connector.config, "recursive": False}
    connector.save()
    answer = explain_missing(connector, "policies/travel.md")
    assert answer.status == Status.NOT_LISTED
    assert answer.details == ["It is in a sub-folder, and this connector does not read sub-folders."]


def test_a_listed_item_not_synced_yet_says_run_a_sync(connector, folder):
    answer = explain_missing(connector, "policies/travel.md")
    assert answer.status == Status.NOT_SYNCED
    assert "not been synced yet" in answer.message
    assert answer.details[0] == "Run a sync: it will read the item and index it."
    # An absolute path or ./ prefix is understood as the same item.
    assert explain_missing(connector, str(folder / "policies" / "travel.md")).status == Status.NOT_SYNCED
    assert explain_missing(connector, "./leave.md").status == Status.NOT_SYNCED


def test_a_listed_item_during_a_sync_says_wait(connector):
    SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING, started_at=timezone.now())
    answer = explain_missing(connector, "leave.md")
    assert answer.status == Status.NOT_SYNCED and "a sync is running now" in answer.message


def test_a_source_that_cannot_list_is_reported(db, tmp_path):
    connector = Connector.objects.create(name="Gone", kind="folder", config={"path": str(tmp_path / "gone")})
    answer = explain_missing(connector, "leave.md")
    assert answer.status == Status.SOURCE_ERROR
    assert f"Folder {tmp_path / 'gone'} does not exist" in answer.message


class _Listing(Source):
    label = "Listing"

    class Config(SourceConfig):
        pass

    def list_ids(self):
        return {"customers:1"}


@pytest.mark.parametrize(
    ("kind", "hint"),
    [("postgres", "filtered out by the dataset's query"), ("mysql", "dataset it belongs to is missing"),
     ("web", "depth or page limits"), ("other", "spelling")],
)
def test_kinds_get_their_own_hints_when_an_item_is_not_listed(db, monkeypatch, kind, hint):
    monkeypatch.setitem(SOURCES, kind, type(f"Fake{kind}", (_Listing,), {"kind": kind}))
    connector = Connector.objects.create(name=kind, kind=kind, config={})
    answer = explain_missing(connector, "customers:2")
    assert answer.status == Status.NOT_LISTED
    assert any(hint in line for line in answer.details), answer.details
    assert explain_missing(connector, "customers:1").status == Status.NOT_SYNCED


def test_uploads_hint_at_names_and_missing_files(db, settings, tmp_path):
    settings.UPLOAD_ROOT = tmp_path
    connector = Connector(name="Up", kind="upload")
    connector.config = {"path": str(tmp_path / str(connector.id))}
    connector.save()
    (tmp_path / str(connector.id)).mkdir()
    answer = explain_missing(connector, "board.pdf")
    assert answer.status == Status.NOT_LISTED and "There is no file board.pdf" in answer.details[0]


def test_a_source_error_from_list_ids_is_caught(db, monkeypatch):
    class Broken(_Listing):
        kind = "broken"

        def list_ids(self):
            raise SourceError("The server refused the login.")

    monkeypatch.setitem(SOURCES, "broken", Broken)
    connector = Connector.objects.create(name="B", kind="broken", config={})
    answer = explain_missing(connector, "x")
    assert answer.status == Status.SOURCE_ERROR and "The server refused the login." in answer.message


def test_an_empty_id_asks_for_one(connector):
    assert explain_missing(connector, "  ").status == Status.EMPTY


# --- French -------------------------------------------------------------------------------------


def test_explanations_speak_french_when_the_language_is_french(connector, folder):
    with translation.override("fr"):
        answer = explain_missing(connector, "minutes.md")
        assert answer.status == Status.NOT_LISTED
        assert answer.message == "La source ne liste pas minutes.md."
        assert answer.details == [f"Il n’y a pas de fichier minutes.md dans {folder}."]
        assert any("Les fichiers .exe ne sont pas lus par ce connecteur" in line
                   for line in explain_missing(connector, "tool.exe").details)
        assert explain_missing(connector, "leave.md").details[0] == (
            "Lancez une synchronisation : elle lira l’élément et l’indexera."
        )
    # The language is chosen per call, not frozen when the module is imported.
    assert explain_missing(connector, "minutes.md").message == "The source does not list minutes.md."


def test_hints_and_plurals_speak_french(db, connector, monkeypatch):
    document = make_document(connector, "leave.md", Document.IndexStatus.INDEXED, acl_public=True)
    for ordinal in range(2):
        Chunk.objects.create(document=document, connector=connector, ordinal=ordinal, text="Some text.",
                             start_char=0, end_char=10, token_count=3, embedding=[0.0] * 384)
    monkeypatch.setitem(SOURCES, "web", type("Fakeweb", (_Listing,), {"kind": "web"}))
    web = Connector.objects.create(name="Site", kind="web", config={})
    with translation.override("fr"):
        answer = explain_missing(connector, "leave.md")
        assert answer.message == "leave.md est indexé sous le titre « Leave.Md » (2 fragments)."
        assert "Visible dans les réponses pour tout le monde." in answer.details
        hints = explain_missing(web, "about.html").details
        assert any("limites de profondeur" in line for line in hints), hints


def test_the_why_page_speaks_french(client, staff, connector):
    client.force_login(staff)
    page = client.get(
        reverse("connectors:why", args=[connector.id]), {"id": "tool.exe"}, HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "La source ne liste pas tool.exe." in page
    assert "Les fichiers .exe ne sont pas lus par ce connecteur" in page
