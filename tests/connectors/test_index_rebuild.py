"""Rebuilding the index beside the live one: searches never see an empty or mixed index, syncs
during a rebuild survive the switch, a killed rebuild resumes, and only staff may start one.

Real folder, parsers, embedder and PostgreSQL; queued tasks run inline (as the sync tests do)."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from connectors import indexing
from connectors.index_version import live_index, versions_written
from connectors.models import Chunk, Connector, Document, IndexVersion, SyncRun
from connectors.rebuild import index_rebuild_start, index_versions_check, rebuild_batch_execute, rebuild_plan_execute
from connectors.search import chunks_search
from connectors.sync import sync_run_execute
from tests.connectors.test_sync import CountingEmbedder

TOPICS = ["annual leave", "the VPN client", "expense claims", "the canteen menu", "parking permits", "laptops"]


def write_documents(root: Path, count: int) -> None:
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        sentences = " ".join(
            f"Rule {j} about {topic} says that team {i} files form {j * 7 + i} before day {j + 1}." for j in range(18)
        )
        (root / f"policy-{i:02}.md").write_text(f"# Policy {i} on {topic}\n\n{sentences}\n")


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    write_documents(root, 18)
    return root


def make_connector(folder: Path) -> Connector:
    return Connector.objects.create(name="Policies", kind="folder", config={"path": str(folder)}, is_public=True)


def sync(connector: Connector) -> SyncRun:
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    return run


def versions_of_chunks() -> dict[int, int]:
    counts: dict[int, int] = {}
    for version in Chunk.objects.values_list("index_version", flat=True):
        counts[version] = counts.get(version, 0) + 1
    return counts


class Searcher(threading.Thread):
    """Asks the same question again and again, on its own database connection, until stopped."""

    def __init__(self, embedding):
        super().__init__(daemon=True)
        self.embedding = embedding
        self.stop = threading.Event()
        self.results: list[tuple[int, frozenset]] = []  # (hits, versions of the hits) per search
        self.errors: list[BaseException] = []

    def run(self):
        try:
            while not self.stop.is_set():
                hits = chunks_search(embedding=self.embedding, text="annual leave rules", groups=[], k=8)
                self.results.append((len(hits), frozenset(hit.chunk.index_version for hit in hits)))
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            connection.close()

    def searches_after(self, count: int, at_least: int) -> None:
        """Wait until `at_least` more searches than `count` have finished."""
        deadline = timezone.now() + dt.timedelta(seconds=60)
        while len(self.results) < count + at_least and not self.errors:
            assert timezone.now() < deadline, "the searcher stopped answering"
            self.stop.wait(0.05)


@pytest.fixture
def side_connections_closed(settings):
    """The search's side threads keep their database connections between searches: close them
    at the end, so the test database can be dropped."""
    yield
    from connectors.search.hybrid import _side_executor

    threads = settings.RAG_SIDE_THREADS
    barrier = threading.Barrier(threads)

    def close():
        connection.close()
        barrier.wait(timeout=10)  # every thread of the pool takes one

    for future in [_side_executor().submit(close) for _ in range(threads)]:
        future.result(timeout=30)


def test_searches_during_a_rebuild_never_see_an_empty_or_mixed_index(
    transactional_db, folder, settings, side_connections_closed
):
    connector = make_connector(folder)
    sync(connector)
    old = live_index().number
    old_chunks = versions_of_chunks()[old]
    searcher = Searcher(indexing.get_embedder().embed(["annual leave rules"])[0])
    searcher.start()
    try:
        searcher.searches_after(0, 3)
        settings.CHUNK_TOKENS = 64  # what is embedded changes: smaller chunks
        version, created = index_rebuild_start()  # the plan and its batches run inline, then the switch
        assert created
        seen_before_switch = len(searcher.results)
        searcher.searches_after(seen_before_switch, 5)
    finally:
        searcher.stop.set()
        searcher.join(timeout=60)
    assert not searcher.errors, searcher.errors
    assert live_index().number == version.number != old
    assert all(hits > 0 for hits, _ in searcher.results), "a search found nothing"
    assert all(len(versions) == 1 for _, versions in searcher.results), "a search mixed two index versions"
    seen = {next(iter(versions)) for _, versions in searcher.results}
    assert seen == {old, version.number}, "the searches did not run across the switch"
    # The new version is complete: every document, in smaller chunks; the old one is kept until purged.
    counts = versions_of_chunks()
    assert counts[version.number] > old_chunks
    assert Chunk.objects.filter(index_version=version.number).values("document").distinct().count() == 18
    assert IndexVersion.objects.get(number=old).state == IndexVersion.State.RETIRED
    index_versions_check(now=timezone.now() + dt.timedelta(seconds=settings.INDEX_PURGE_GRACE_SECONDS + 1))
    assert set(versions_of_chunks()) == {version.number}
    assert IndexVersion.objects.get(number=old).purged_at is not None


@pytest.mark.parametrize("recipe_changes", [True, False], ids=["new-recipe", "same-recipe"])
def test_a_document_synced_during_a_rebuild_is_there_after_the_switch(db, folder, settings, recipe_changes):
    connector = make_connector(folder)
    sync(connector)
    old = live_index().number
    if recipe_changes:
        settings.CHUNK_TOKENS = 64
    version, _ = index_rebuild_start()  # inside the test's transaction: its plan is not queued yet
    (folder / "parking.md").write_text("# Car park\n\nThe underground car park opens at seven for cyclists.\n")
    (folder / "policy-00.md").write_text("# Policy 0 on annual leave\n\nLeave is now booked in the new portal.\n")
    sync(connector)
    parking = Document.objects.get(external_id="parking.md")
    # Written into the new version; into the live one too when it has the same recipe.
    assert set(parking.chunks.values_list("index_version", flat=True)) == (
        {version.number} if recipe_changes else {old, version.number}
    )
    assert live_index().number == old

    rebuild_plan_execute(version.number)  # the rest of the documents, then the switch

    assert live_index().number == version.number
    hits = chunks_search(embedding=None, text="underground car park cyclists", groups=[], k=3, mode="fulltext")
    assert hits and hits[0].chunk.document_id == parking.id
    changed = chunks_search(embedding=None, text="portal", groups=[], k=3, mode="fulltext")
    assert changed and "new portal" in changed[0].chunk.text
    assert Document.objects.filter(index_status=Document.IndexStatus.INDEXED).count() == 19
    assert Chunk.objects.filter(index_version=version.number).values("document").distinct().count() == 19


def test_a_document_waiting_for_its_index_task_at_the_switch_is_not_missing(db, folder, settings, monkeypatch):
    connector = make_connector(folder)
    sync(connector)
    (folder / "policy-01.md").write_text("# Policy 1 on the VPN client\n\nThe VPN now needs a hardware key.\n")
    queued = []
    with monkeypatch.context() as slow:  # the index worker has not taken the sync's batch yet
        slow.setattr("connectors.sync.enqueue", lambda name, *args: queued.append(args))
        run = SyncRun.objects.create(connector=connector)
        sync_run_execute(run.id)
    waiting = Document.objects.get(external_id="policy-01.md")
    assert waiting.index_status == Document.IndexStatus.PENDING
    settings.CHUNK_TOKENS = 64
    version, _ = index_rebuild_start()
    rebuild_plan_execute(version.number)
    assert live_index().number == version.number
    hits = chunks_search(embedding=None, text="hardware key", groups=[], k=3, mode="fulltext")
    assert hits and hits[0].chunk.document_id == waiting.id
    from connectors.sync import index_documents_execute

    index_documents_execute(*queued[0])  # the sync's batch, late: stored again, nothing duplicated
    waiting.refresh_from_db()
    assert waiting.index_status == Document.IndexStatus.INDEXED
    ordinals = list(waiting.chunks.filter(index_version=version.number).values_list("ordinal", flat=True))
    assert sorted(ordinals) == list(range(len(ordinals)))


def test_a_rebuild_killed_halfway_resumes_without_duplicates(db, folder, settings, monkeypatch):
    connector = make_connector(folder)
    sync(connector)
    old = live_index().number
    settings.CHUNK_TOKENS = 64
    settings.EMBEDDING_BATCH_SIZE = 4  # several batches
    counter = CountingEmbedder(indexing.get_embedder())
    monkeypatch.setattr("connectors.rebuild.get_embedder", lambda: counter)
    version, _ = index_rebuild_start()
    queued = []
    with monkeypatch.context() as lost:  # the worker that takes the batches dies after the first one
        lost.setattr("connectors.rebuild.enqueue", lambda name, *args: queued.append(args))
        rebuild_plan_execute(version.number)
    assert len(queued) > 2
    number, first = queued[0]
    assert rebuild_batch_execute(number, first) == len(first)
    embedded_first = counter.texts
    assert rebuild_batch_execute(number, first) == 0  # the same batch delivered again: nothing done twice
    assert counter.texts == embedded_first
    halfway = IndexVersion.objects.get(number=version.number)
    assert halfway.state == IndexVersion.State.BUILDING and 0 < halfway.documents_done < halfway.documents_total
    assert live_index().number == old  # searches still read the complete old version

    # No progress for a while: the beat's check queues the plan again, which does the rest.
    later = timezone.now() + dt.timedelta(seconds=settings.INDEX_REBUILD_STALL_SECONDS + 1)
    assert index_versions_check(now=later)["resumed"] == [version.number]

    assert live_index().number == version.number
    per_document = Chunk.objects.filter(index_version=version.number).values_list("document_id", "ordinal")
    assert len(per_document) == len(set(per_document))
    assert {doc for doc, _ in per_document} == set(Document.objects.values_list("id", flat=True))
    assert counter.texts == Chunk.objects.filter(index_version=version.number).count()  # each chunk embedded once


def test_starting_twice_resumes_the_running_rebuild(db, folder, settings):
    sync(make_connector(folder))
    settings.CHUNK_TOKENS = 64
    first, created = index_rebuild_start()
    again, created_again = index_rebuild_start()
    assert created and not created_again and again.number == first.number
    settings.CHUNK_TOKENS = 100  # changed again: a worker configured so does not fill the older recipe's version
    ids = [str(i) for i in Document.objects.values_list("id", flat=True)]
    assert rebuild_batch_execute(first.number, ids) == 0
    assert not Chunk.objects.filter(index_version=first.number).exists()
    # ... and starting a rebuild again retires that one and builds the new recipe.
    newer, created_newer = index_rebuild_start()
    assert created_newer and newer.number > first.number
    assert IndexVersion.objects.get(number=first.number).state == IndexVersion.State.RETIRED
    assert versions_written() == [newer.number]


def test_dense_search_waits_for_the_rebuild_when_the_embedding_model_changed(db, folder, settings):
    sync(make_connector(folder))
    embedding = indexing.get_embedder().embed(["parking permits"])[0]
    before = chunks_search(embedding=embedding, text="parking permits", groups=[], k=5)
    assert any(hit.dense_rank for hit in before)
    settings.EMBEDDING_MODEL = "another-model"  # the live vectors are not comparable with the question's
    during = chunks_search(embedding=embedding, text="parking permits", groups=[], k=5)
    assert during and not any(hit.dense_rank for hit in during)


def test_a_system_check_says_when_the_index_is_out_of_date(db, settings):
    from django.core.checks import run_checks

    def warnings():
        return [m.id for m in run_checks(databases=["default"], tags=["database"])]

    assert "connectors.W001" not in warnings()
    settings.EMBEDDING_MODEL = "another-model"
    assert "connectors.W001" in warnings()
    index_rebuild_start()
    assert "connectors.W001" not in warnings()  # the rebuild is on its way


# --- the command and the staff page ------------------------------------------------------------


def test_the_command_starts_a_rebuild_and_reports_status(db, folder, settings):
    sync(make_connector(folder))
    out = io.StringIO()
    call_command("index_rebuild", "--status", stdout=out)
    report = json.loads(out.getvalue())
    assert report["building"] is None and report["out_of_date"] is False
    settings.CHUNK_TOKENS = 64
    out = io.StringIO()
    call_command("index_rebuild", "--status", stdout=out)
    assert json.loads(out.getvalue())["out_of_date"] is True
    out = io.StringIO()
    call_command("index_rebuild", stdout=out)
    assert "Started rebuilding the index as version" in out.getvalue()
    assert IndexVersion.objects.filter(state=IndexVersion.State.BUILDING).exists()


@pytest.mark.parametrize("persona", ["owner", "teammate", "outsider"])
def test_the_index_page_and_button_are_for_staff_only(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/connectors/index/").status_code == 404
    assert client.post("/connectors/index/rebuild/").status_code == 404
    assert client.get("/connectors/index/progress/").status_code == 404
    assert not IndexVersion.objects.filter(state=IndexVersion.State.BUILDING).exists()


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    assert client.get("/connectors/index/").status_code == 302
    assert client.post("/connectors/index/rebuild/").status_code == 302
    assert client.get("/connectors/index/progress/").status_code == 302
    assert not IndexVersion.objects.filter(state=IndexVersion.State.BUILDING).exists()


def test_staff_see_the_out_of_date_notice_and_start_a_rebuild_with_the_button(client, staff, folder, settings):
    sync(make_connector(folder))
    client.force_login(staff)
    assert "out of date" not in client.get("/connectors/").content.decode()
    settings.CHUNK_TOKENS = 64
    page = client.get("/connectors/").content.decode()
    assert "The index is out of date" in page and "/connectors/index/" in page
    response = client.post("/connectors/index/rebuild/")
    assert response.status_code == 302 and response.url == "/connectors/index/"
    building = IndexVersion.objects.get(state=IndexVersion.State.BUILDING)
    page = client.get("/connectors/index/").content.decode()
    assert f"Rebuilding: version {building.number}" in page and 'id="index-progress"' in page
    assert "The index is being rebuilt" in client.get("/connectors/").content.decode()


def test_the_connectors_page_follows_the_rebuild_progress_from_its_json(client, staff, folder, settings):
    sync(make_connector(folder))
    client.force_login(staff)
    assert client.get("/connectors/index/progress/").json() == {
        "active": False, "status": "live", "live_version": 1, "out_of_date": False, "run": None,
    }
    settings.CHUNK_TOKENS = 64
    building, _ = index_rebuild_start()  # a `db` test never commits: the plan stays queued
    IndexVersion.objects.filter(number=building.number).update(documents_done=9, chunks_done=40)
    progress = client.get("/connectors/index/progress/").json()
    assert progress["active"] is True and progress["live_version"] == building.number - 1
    assert progress["run"] == {
        "status": "running", "status_label": "Running", "version": building.number, "progress_percent": 50,
        "documents_done": 9, "documents_total": 18, "chunks_done": 40,
    }
    page = client.get("/connectors/").content.decode()
    assert 'data-progress-url="/connectors/index/progress/"' in page and 'data-active="true"' in page
    assert f"The index is being rebuilt (version {building.number})" in page and 'value="50"' in page
    assert "50%" in page
    IndexVersion.objects.filter(number=building.number - 1).update(state=IndexVersion.State.RETIRED)
    IndexVersion.objects.filter(number=building.number).update(state=IndexVersion.State.LIVE)  # switched
    assert client.get("/connectors/index/progress/").json()["active"] is False
    assert "data-progress-url=\"/connectors/index/progress/\"" not in client.get("/connectors/").content.decode()


def test_the_index_page_speaks_french(client, staff, db):
    client.force_login(staff)
    page = client.get("/connectors/index/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Reconstruire l’index" in page
