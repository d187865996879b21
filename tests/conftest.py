"""Shared fixtures: personas, the real model server, real workers and a real web server.

Everything runs against the machine's PostgreSQL (with pgvector) and Redis; the
model server is llama.cpp with the bundled SmolLM2, started once per session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User

# The sample databases (Chinook, Northwind) as session fixtures for every package's tests.
from tests.connectors.sample_dbs import (  # noqa: F401 - fixtures
    my_chinook, pg_chinook, pg_northwind, pg_reader, sample_database_servers,
)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
#: The material budget `make run` gives the embedded CPU model (assistant/launcher/supervisor.py):
#: the real model server of the tests is that model, so the tests run at that product default.
CPU_MODEL_CONTEXT_TOKENS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, *, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"process for {url} exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(autouse=True)
def _default_language():
    """A request made with the test client leaves its language active in this thread (the
    locale middleware activates it, nothing deactivates it): start every test in English."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _connector_data_roots(settings, tmp_path_factory):
    """Folder and JSON Lines connectors read only under the operator's data roots: here pytest's
    temporary folders and the demo handbook (as `make run` allows it)."""
    settings.CONNECTOR_DATA_DIR = [str(tmp_path_factory.getbasetemp()), str(settings.BASE_DIR / "samples" / "handbook")]


@pytest.fixture(autouse=True)
def _tasks_run_inline(request):
    """Without a real worker, queued tasks (index batches) run inline, as a worker would run them."""
    from assistant.celery import app

    app.conf.task_always_eager = not {"celery_worker", "purge_queues"} & set(request.fixturenames)
    yield
    app.conf.task_always_eager = False


# --- personas ---------------------------------------------------------------------------------


@pytest.fixture
def engineering(db) -> Group:
    return Group.objects.create(name="engineering")


@pytest.fixture
def sales(db) -> Group:
    return Group.objects.create(name="sales")


@pytest.fixture
def owner(db, engineering) -> User:
    user = User.objects.create_user("owner", password="owner-pass-123")
    user.groups.add(engineering)
    return user


@pytest.fixture
def teammate(db, engineering) -> User:
    user = User.objects.create_user("teammate", password="teammate-pass-123")
    user.groups.add(engineering)
    return user


@pytest.fixture
def outsider(db, sales) -> User:
    user = User.objects.create_user("outsider", password="outsider-pass-123")
    user.groups.add(sales)
    return user


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser("admin", password="admin-pass-123")


# --- real services ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def llm_server():
    """The embedded llama.cpp server with SmolLM2-135M, on a free port, for the whole session."""
    from inference.chat_client import wait_until_ready
    from inference.model_server import MODEL_ALIAS, start_server

    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / "llm-server.log"
    process = start_server(port=port, context_length=settings.LLM_CONTEXT_LENGTH, log_path=str(log))
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(base_url, timeout=120)
    except Exception:
        stop_process(process)
        raise
    yield {"base_url": base_url, "model": MODEL_ALIAS, "process": process, "port": port}
    stop_process(process)


@pytest.fixture
def use_llm(llm_server, settings):
    """Point the app at the session's model server."""
    from assistant.chat.answering import get_chat_client

    settings.LLM_BASE_URL = llm_server["base_url"]
    settings.LLM_MODEL = llm_server["model"]
    settings.RAG_CONTEXT_TOKENS = CPU_MODEL_CONTEXT_TOKENS
    get_chat_client.cache_clear()
    yield llm_server
    get_chat_client.cache_clear()


def database_url(db: dict) -> str:
    """The URL of Django's database settings; a unix-socket host (the embedded PostgreSQL of a
    bare machine) travels percent-encoded, as dj-database-url reads it."""
    host = db["HOST"] or (db.get("OPTIONS") or {}).get("host") or ""
    host = quote(host, safe="") if host.startswith("/") else host
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{db['USER']}:{quote(db.get('PASSWORD') or '', safe='')}@{host}{port}/{db['NAME']}"


def service_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that must share the test database and Redis."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(db),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="false",
        SECURE_COOKIES="false",
        PYTHONUNBUFFERED="1",
        # The operator's connector policy of this test (see _connector_data_roots).
        CONNECTOR_DATA_DIR=",".join(settings.CONNECTOR_DATA_DIR),
        CONNECTOR_ALLOWED_DB_HOSTS=",".join(settings.CONNECTOR_ALLOWED_DB_HOSTS),
        RAG_CONTEXT_TOKENS=str(CPU_MODEL_CONTEXT_TOKENS),
    )
    env.update(extra)
    return env


@pytest.fixture
def purge_queues():
    from assistant.celery import app

    app.control.purge()
    yield
    app.control.purge()


def spawn_celery_worker(queues: str = "default,sync,index", pool: str = "solo", **extra_env: str) -> subprocess.Popen:
    """Start a real Celery worker process (its own process group) and wait until it answers pings."""
    from assistant.celery import app

    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "celery-worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", queues,
         "--pool", pool, "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=service_env(**extra_env), stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited: {log.read_text()[-3000:]}")
        if app.control.ping(timeout=0.5):
            return process
    stop_process(process)
    raise RuntimeError("celery worker did not answer pings within 60s")


def spawn_web(name: str = "web", **extra_env: str) -> tuple[subprocess.Popen, str]:
    """Start the ASGI app under uvicorn (its own process group) against the test database; returns
    the process and its base URL once /healthz answers."""
    ARTIFACTS.mkdir(exist_ok=True)
    port, log = free_port(), ARTIFACTS / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT, env=service_env(ALLOWED_HOSTS="127.0.0.1,localhost", **extra_env), stdout=log.open("ab"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
    except Exception:
        stop_process(process)
        raise
    return process, url


@pytest.fixture
def celery_worker(transactional_db, purge_queues):
    """A real Celery worker process consuming the project's queues against the test database."""
    process = spawn_celery_worker()
    yield process
    stop_process(process)


@pytest.fixture
def scripted(settings):
    """`scripted(script)` points the app at a scripted tool-calling model server (LLM_TOOLS on),
    playing `script` one turn per request, and returns it (tests/chat/scripted_llm.py)."""
    from assistant.chat.answering import get_chat_client
    from tests.chat.scripted_llm import use_scripted_model

    models = []

    def start(script, **kwargs):
        models.append(use_scripted_model(settings, script, **kwargs))
        return models[-1]

    yield start
    for model in models:
        model.close()
    get_chat_client.cache_clear()


@pytest.fixture
def app_server(transactional_db, use_llm):
    """The ASGI app under uvicorn, as in production, against the test database."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / "web.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT,
        env=service_env(LLM_BASE_URL=use_llm["base_url"], LLM_MODEL=use_llm["model"], ALLOWED_HOSTS="127.0.0.1,localhost"),
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
    except Exception:
        stop_process(process)
        raise
    yield url
    stop_process(process)


def wait_for_run(run_id, *, timeout: float = 120.0, between=None):
    """Poll a SyncRun until it ends; returns it. `between` is called between polls (the beat's check)."""
    from connectors.models import SyncRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.get(id=run_id)
        if run.status not in SyncRun.ACTIVE:
            return run
        if between is not None:
            between()
        time.sleep(0.25)
    raise AssertionError(f"sync run {run_id} still {run.status} after {timeout}s")
