"""Faults of the services the assistant stands on: Redis, PostgreSQL and the model server.

Each test breaks one real service while real work is under way and then checks what a
user and an admin would: the work still gets done, nothing is lost, nothing is there twice.
(A worker killed mid-sync: tests/e2e/test_worker_faults.py.) The Redis and PostgreSQL that
are broken here are the tests' own, never the machine's shared ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings

from assistant.chat.models import Message
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import connector_sync_start
from connectors.sync_recovery import sync_runs_recover
from connectors.locks import redis_client
from tests.conftest import (
    ARTIFACTS, ROOT, free_port, service_env, spawn_celery_worker, stop_process, wait_for_http, wait_for_run,
)
from tests.e2e.faults import PostgresCluster, RedisServer, celery_broker, django_script
from tests.e2e.sse import StreamedAnswer, ask, login

pytestmark = pytest.mark.e2e


def write_pages(folder: Path, count: int, topic: str) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{topic}-{i:03}.md").write_text(
            f"# {topic.title()} page {i}\n\nRoom {i} of the {topic} wing is booked by team {i % 17} on Mondays.\n"
        )
    return folder


def assert_indexed_exactly_once(connector: Connector, count: int) -> None:
    """Every file is one document and one chunk: nothing lost, nothing twice."""
    assert Document.objects.filter(connector=connector).count() == count
    assert Document.objects.filter(connector=connector, index_status="indexed").count() == count
    assert Chunk.objects.filter(connector=connector).count() == count
    assert Chunk.objects.filter(connector=connector).values("document_id").distinct().count() == count


def broker_state(redis_server, run) -> str:
    """What the broker and the database hold for a run that did not end: where its work went."""
    client = redis_server.client()
    pending = Document.objects.filter(pending_run_id=run.id, index_status="pending").count()
    keys = {key.decode(): client.type(key).decode() for key in client.scan_iter("*")}
    sizes = {key: client.llen(key) if kind == "list" else client.hlen(key) if kind == "hash"
             else client.zcard(key) if kind == "zset" else client.ttl(key) for key, kind in keys.items()
             if not key.startswith("_kombu.binding")}
    return f"pending documents {pending}, indexed {SyncRun.objects.get(id=run.id).indexed}, broker {sizes}"


def spawn_app_server(env: dict[str, str], log_name: str = "web-faults.log") -> tuple[subprocess.Popen, str]:
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / log_name
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=90, process=process, log=log)
    except Exception:
        stop_process(process)
        raise
    return process, url


# --- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path, settings):
    """A Redis of this test's own (append-only file, fsync on every write) as broker and lock store."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        # The app's broker first: it remembers the test Redis it had, and returns to it after.
        with celery_broker(server.url):
            settings.REDIS_URL = settings.CELERY_BROKER_URL = server.url  # what spawned workers are given
            redis_client.cache_clear()
            yield server
    finally:
        server.stop()
        redis_client.cache_clear()


def test_syncs_queued_when_redis_crashes_run_once_it_is_back(
    own_redis, tmp_path, transactional_db, django_capture_on_commit_callbacks
):
    wiki = Connector.objects.create(
        name="Wiki", kind="folder", config={"path": str(write_pages(tmp_path / "wiki", 120, "wiki"))}, is_public=True
    )
    handbook = Connector.objects.create(
        name="Handbook", kind="folder", config={"path": str(write_pages(tmp_path / "hb", 80, "handbook"))},
        is_public=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        runs = [connector_sync_start(connector=wiki), connector_sync_start(connector=handbook)]
    assert own_redis.queued("sync") == 2  # no worker yet: both wait in the queue

    own_redis.crash()
    own_redis.start()
    assert own_redis.queued("sync") == 2, "the append-only file must keep queued tasks across a crash"

    worker = spawn_celery_worker(EMBEDDING_BATCH_SIZE="16")
    try:
        runs = [wait_for_run(run.id, timeout=300) for run in runs]
    finally:
        stop_process(worker)
    assert [run.status for run in runs] == [SyncRun.Status.SUCCEEDED] * 2, [run.error for run in runs]
    assert [run.indexed for run in runs] == [120, 80]
    assert_indexed_exactly_once(wiki, 120)
    assert_indexed_exactly_once(handbook, 80)


def test_a_redis_crash_mid_sync_loses_and_duplicates_nothing(
    own_redis, tmp_path, transactional_db, django_capture_on_commit_callbacks, settings
):
    # A task handed to the worker as Redis dies can be lost for good (kombu pops it, then records
    # it as unacknowledged in a second command): the beat's check, played here, queues what the
    # database still has pending once nothing was stored for this long.
    settings.SYNC_INDEX_STALL_SECONDS = 20
    files = 240
    wiki = Connector.objects.create(
        name="Wiki", kind="folder", config={"path": str(write_pages(tmp_path / "wiki", files, "wiki"))}, is_public=True
    )
    # Small index batches, so many index tasks wait in Redis when it dies; a task taken but
    # never acknowledged (the worker's ack is lost with the connection) comes back after 10 s.
    worker = spawn_celery_worker(EMBEDDING_BATCH_SIZE="8", CELERY_VISIBILITY_TIMEOUT="10")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = connector_sync_start(connector=wiki)
        deadline = time.monotonic() + 180
        while True:
            run.refresh_from_db()
            if run.indexed >= 8 or run.status not in SyncRun.ACTIVE:
                break
            assert time.monotonic() < deadline, "indexing never started"
            time.sleep(0.05)
        assert run.fetch_done and 0 < run.indexed < files, "the crash must land while index tasks are queued"
        waiting = own_redis.queued("index")
        assert waiting > 0

        own_redis.crash()
        time.sleep(2)  # the worker finds its broker gone
        own_redis.start()
        # One queued task is lost for good, as when the worker had popped it when Redis died.
        assert own_redis.client().rpop("index"), "an index task must still be queued"

        try:
            run = wait_for_run(run.id, timeout=300, between=sync_runs_recover)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {broker_state(own_redis, run)}") from exc
        # The broker works again end to end: a second sync finds every file already indexed.
        with django_capture_on_commit_callbacks(execute=True):
            again = connector_sync_start(connector=wiki)
        again = wait_for_run(again.id, timeout=120)
    finally:
        stop_process(worker)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.indexed == files and run.failed == 0
    assert again.status == SyncRun.Status.SUCCEEDED and again.unchanged == files and again.added == 0
    assert_indexed_exactly_once(wiki, files)
    assert "Room 123 of the wiki wing is booked by team 4" in Chunk.objects.get(document__external_id="wiki-123.md").text


# --- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def scratch_postgres():
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


class Load:
    """Users clicking around the chat while the database goes away: page loads and questions."""

    def __init__(self, url: str, users: int, password: str):
        self.url, self.users, self.password = url, users, password
        self.outcomes: list[tuple[float, str, bool, str]] = []  # (time, what, ok, detail)
        self.answers: list[tuple[str, StreamedAnswer]] = []  # (conversation id, answer) seen "done"
        self.asked = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._user, args=(i,), daemon=True) for i in range(users)]

    def start(self):
        for thread in self._threads:
            thread.start()

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=180)

    def _record(self, what: str, ok: bool, detail: str = ""):
        with self._lock:
            self.outcomes.append((time.monotonic(), what, ok, detail))

    def _user(self, index: int):
        client = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = login(self.url, f"user{index}", self.password)
                page = client.get("/chat/")
                self._record("page", page.status_code == 200, str(page.status_code))
                if page.status_code != 200:
                    time.sleep(0.2)
                    continue
                with self._lock:
                    self.asked += 1
                conversation, answer = ask(client, f"Which team books room {index}? Answer in one sentence.")
                ok = answer.done is not None and answer.done.get("status") == Message.Status.COMPLETE
                self._record("answer", ok, json.dumps(answer.error) if answer.error else "")
                if ok:
                    with self._lock:
                        self.answers.append((conversation, answer))
            except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
                self._record("request", False, f"{exc.__class__.__name__}: {exc}")
                client = None  # log in again: the session may have been lost with the request
                time.sleep(0.2)

    def failures_after(self, moment: float) -> list:
        return [o for o in self.outcomes if o[0] >= moment and not o[2]]

    def successes_after(self, moment: float, what: str) -> int:
        return sum(1 for o in self.outcomes if o[0] >= moment and o[2] and o[1] == what)


@pytest.mark.timeout(900)
def test_the_app_and_workers_recover_from_a_postgres_restart_under_load(scratch_postgres, tmp_path, purge_queues):
    users, files, password = 3, 200, "load-pass-123"
    from inference.model_server import MODEL_ALIAS

    model = ModelServer(free_port())
    model.start()
    folder = write_pages(tmp_path / "wiki", files, "wiki")
    database_url = scratch_postgres.create_database()
    env = service_env(
        # The web server lends requests pooled connections (checked before each loan); the
        # workers open theirs per task.
        DATABASE_URL=database_url,
        LLM_BASE_URL=model.base_url, LLM_MODEL=MODEL_ALIAS, LLM_MAX_TOKENS="16",
        ALLOWED_HOSTS="127.0.0.1,localhost", EMBEDDING_BATCH_SIZE="8", SYNC_LOCK_SECONDS="5",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=600)
    connector_id = django_script(
        f"""
from django.contrib.auth.models import User
from connectors.models import Connector
for i in range({users}):
    User.objects.create_user(f"user{{i}}", password={password!r})
print(Connector.objects.create(name="Wiki", kind="folder", config={{"path": {str(folder)!r}}}, is_public=True).id)
""",
        env,
    ).strip()
    start_sync = f"""
from connectors.models import Connector
from connectors.services import connector_sync_start
print(connector_sync_start(connector=Connector.objects.get(id={connector_id!r})).id)
"""
    web, url = spawn_app_server(env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", "default,sync,index", "--pool", "solo",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=(ARTIFACTS / "celery-worker-pg.log").open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    load = Load(url, users, password)
    try:
        load.start()
        deadline = time.monotonic() + 240
        while load.successes_after(0, "answer") < 1 or load.successes_after(0, "page") < users:  # all chatting
            assert time.monotonic() < deadline, f"no answers before the restart: {load.outcomes[-5:]}"
            time.sleep(0.2)
        first_run = django_script(start_sync, env).strip()
        deadline = time.monotonic() + 120
        while scratch_postgres.query("SELECT indexed FROM connectors_syncrun WHERE id = %s", first_run)[0][0] < 8:
            assert time.monotonic() < deadline, "the sync did not start indexing"
            time.sleep(0.1)

        scratch_postgres.restart()  # mid-sync, mid-answers
        back_at = time.monotonic()

        # The app is not restarted: within a few seconds every request succeeds again.
        settle = back_at + 5
        deadline = back_at + 240
        while load.successes_after(settle, "answer") < 2 or load.successes_after(settle, "page") < users:
            assert time.monotonic() < deadline, f"no recovery: {load.failures_after(back_at)[-5:]}"
            time.sleep(0.2)
        load.stop()
        assert web.poll() is None and worker.poll() is None, "nothing may need a restart"
        late_failures = load.failures_after(settle)
        assert not late_failures, late_failures

        # The sync interrupted by the restart fails at worst; the next one completes the work.
        status = ""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = scratch_postgres.query("SELECT status FROM connectors_syncrun WHERE id = %s", first_run)[0][0]
            if status not in ("queued", "running"):
                break
            django_script("from connectors.services import sync_runs_stale_fail\nsync_runs_stale_fail()", env)
            time.sleep(1)
        assert status in ("succeeded", "failed"), status
        second_run = django_script(start_sync, env).strip()
        deadline = time.monotonic() + 300
        while scratch_postgres.query("SELECT status FROM connectors_syncrun WHERE id = %s", second_run)[0][0] in (
            "queued", "running"
        ):
            assert time.monotonic() < deadline, "the sync after the restart did not end"
            time.sleep(1)
    finally:
        load.stop()
        stop_process(worker)
        stop_process(web)
        stop_process(model.process)

    ((second_status, second_error),) = scratch_postgres.query(
        "SELECT status, error FROM connectors_syncrun WHERE id = %s", second_run
    )
    assert second_status == "succeeded", second_error
    docs, indexed, chunks, distinct = scratch_postgres.query(
        "SELECT (SELECT count(*) FROM connectors_document), "
        "(SELECT count(*) FROM connectors_document WHERE index_status = 'indexed'), "
        "(SELECT count(*) FROM connectors_chunk), (SELECT count(DISTINCT document_id) FROM connectors_chunk)"
    )[0]
    assert (docs, indexed, chunks, distinct) == (files, files, files, files)

    # Every answer a user saw complete is stored once, with the text they saw.
    for conversation, answer in load.answers:
        rows = scratch_postgres.query(
            "SELECT status, content FROM chat_message WHERE id = %s", answer.done["message_id"]
        )
        assert rows == [("complete", answer.text.strip())]
    # No answer is left "streaming" for ever (which would block its conversation).
    stuck = scratch_postgres.query(
        "SELECT id, status FROM chat_message WHERE role = 'assistant' AND status IN ('pending', 'streaming')"
    )
    assert not stuck, stuck
    ((questions,),) = scratch_postgres.query("SELECT count(*) FROM chat_message WHERE role = 'user'")
    ((replies,),) = scratch_postgres.query("SELECT count(*) FROM chat_message WHERE role = 'assistant'")
    assert questions == replies <= load.asked


# --- the model server ----------------------------------------------------------------------------------


def stream_events(client: httpx.Client, stream_url: str, *, on_token=None) -> StreamedAnswer:
    answer = StreamedAnswer(started=time.monotonic())
    with client.stream("GET", stream_url, headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:])
                if event == "token":
                    answer.tokens.append(data["text"])
                    answer.token_times.append(time.monotonic())
                    if on_token:
                        on_token(answer)
                elif event == "done":
                    answer.done = data
                elif event == "error":
                    answer.error = data
    return answer


def submit(client: httpx.Client, conversation_id: str, question: str) -> dict:
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    response = client.post(f"/chat/api/c/{conversation_id}/messages/", json={"content": question}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def retry(client: httpx.Client, message_id: str) -> dict:
    """What the Retry button does: answer the same question again in place of the failed answer."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    response = client.post(f"/chat/api/messages/{message_id}/retry/", json={}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


class ModelServer:
    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        from inference.chat_client import wait_until_ready
        from inference.model_server import start_server

        self.process = start_server(
            port=self.port, context_length=django_settings.LLM_CONTEXT_LENGTH,
            log_path=str(ARTIFACTS / "llm-server-faults.log"),
            threads=1,  # one thread: no OpenMP spinning against the other test processes on a small machine
        )
        wait_until_ready(self.base_url, timeout=180)

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def test_the_model_server_dying_mid_answer_keeps_the_partial_answer_and_a_retry_works(
    transactional_db, owner, tmp_path
):
    from inference.model_server import MODEL_ALIAS

    ARTIFACTS.mkdir(exist_ok=True)
    model = ModelServer(free_port())
    model.start()
    web = None
    try:
        web, url = spawn_app_server(
            service_env(LLM_BASE_URL=model.base_url, LLM_MODEL=MODEL_ALIAS, LLM_MAX_TOKENS="32",
                        LLM_CONNECT_RETRIES="1", ALLOWED_HOSTS="127.0.0.1,localhost")
        )
        client = login(url, "owner", "owner-pass-123")
        headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": url}
        conversation_id = client.post("/chat/api/conversations/", json={}, headers=headers).json()["id"]
        question = "Write a long essay, in many paragraphs, about the history of industrial robots."
        submitted = submit(client, conversation_id, question)

        def kill_after_some_tokens(answer: StreamedAnswer):
            if len(answer.tokens) == 4:
                model.kill()

        cut = stream_events(client, submitted["stream_url"], on_token=kill_after_some_tokens)

        # The user is told, in words, that the answer broke off, and may retry.
        assert cut.done is None and cut.error is not None, cut
        assert "model server" in cut.error["message"].lower()
        assert cut.error.get("retryable") is True and cut.error.get("partial") is True
        assert len(cut.tokens) >= 4
        # The partial answer is kept, marked as an error that says it was cut off.
        failed = Message.objects.get(id=submitted["assistant_message"]["id"])
        assert failed.status == Message.Status.ERROR
        assert failed.content == cut.text and failed.content.strip()
        assert failed.error.startswith("The answer was cut off")

        # Retrying while the server is still down: a clear error again, nothing half-written.
        down = stream_events(client, retry(client, str(failed.id))["stream_url"])
        assert down.error is not None and not down.tokens and "model server" in down.error["message"].lower()
        assert down.error.get("retryable") is True and down.error.get("partial") is False
        failed.refresh_from_db()
        assert failed.status == Message.Status.ERROR and failed.content == ""

        # Once the server is back, Retry answers the question.
        model.start()
        done = stream_events(client, retry(client, str(failed.id))["stream_url"])
        assert done.error is None and done.done is not None and done.done["status"] == Message.Status.COMPLETE
        assert done.text.strip()
    finally:
        if web is not None:
            stop_process(web)
        if model.process is not None:
            stop_process(model.process)

    # Nothing lost, nothing twice: one question, and the retried answer in place of the failed one.
    messages = list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at"))
    assert [(m.role, m.status) for m in messages] == [
        (Message.Role.USER, Message.Status.COMPLETE), (Message.Role.ASSISTANT, Message.Status.COMPLETE)
    ]
    assert messages[0].content == question
    assert messages[1].id == failed.id and messages[1].content == done.text.strip() and not messages[1].error
