"""`make run`'s launcher (its decisions, without starting servers) and `manage.py bootstrap_demo`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.utils import timezone

from assistant import launcher
from assistant.launcher import supervisor
from assistant.launcher.processes import _create_time
from connectors.models import Connector, SyncRun

# --- .env --------------------------------------------------------------------------------------


def test_parse_dotenv_reads_assignments_and_skips_comments():
    text = """
# a comment
   # an indented comment

DEBUG=false
export SECRET_KEY=abc123
LLM_PORT = 9000
QUOTED="hello world"
SINGLE='it''s raw $HOME'
HASH_IN_QUOTES="a # b"
TRAILING=value # a note
URL=postgres://u:p@host:5432/db?sslmode=require
EMPTY=
not an assignment
=no-key
1BAD=x
"""
    values = launcher.parse_dotenv(text)
    assert values == {
        "DEBUG": "false",
        "SECRET_KEY": "abc123",
        "LLM_PORT": "9000",
        "QUOTED": "hello world",
        "SINGLE": "it''s raw $HOME",
        "HASH_IN_QUOTES": "a # b",
        "TRAILING": "value",
        "URL": "postgres://u:p@host:5432/db?sslmode=require",
        "EMPTY": "",
    }


def test_parse_dotenv_handles_a_comment_after_a_quoted_value():
    assert launcher.parse_dotenv('NAME="a b"   # note') == {"NAME": "a b"}


def test_load_dotenv_never_overrides_the_environment(tmp_path):
    path = tmp_path / ".env"
    path.write_text("DATABASE_URL=postgres://from-dotenv/db\nWEB_PORT=9999\n")
    environ = {"DATABASE_URL": "postgres://from-env/db"}
    applied = launcher.load_dotenv(path, environ)
    assert environ == {"DATABASE_URL": "postgres://from-env/db", "WEB_PORT": "9999"}
    assert applied == {"WEB_PORT": "9999"}


def test_load_dotenv_without_a_file_changes_nothing(tmp_path):
    environ = {"A": "1"}
    assert launcher.load_dotenv(tmp_path / ".env", environ) == {}
    assert environ == {"A": "1"}


# --- decisions -------------------------------------------------------------------------------


def test_plan_starts_everything_on_a_bare_machine():
    assert launcher.plan_services({}) == launcher.Plan(True, True, True)


def test_plan_uses_what_the_environment_names():
    plan = launcher.plan_services(
        {"DATABASE_URL": "postgres://db/x", "REDIS_URL": "redis://r:6379/0", "LLM_BASE_URL": "http://vllm/v1"}
    )
    assert plan == launcher.Plan(embedded_postgres=False, embedded_redis=False, embedded_llm=False)


def test_plan_treats_an_empty_value_as_unset():
    plan = launcher.plan_services({"DATABASE_URL": "  ", "REDIS_URL": "redis://r:6379/0"})
    assert plan.embedded_postgres and not plan.embedded_redis and plan.embedded_llm


def test_data_dir_defaults_to_var_in_the_repo_and_resolves_relative_paths(tmp_path):
    assert launcher.data_dir_from({}, tmp_path) == tmp_path / "var"
    assert launcher.data_dir_from({"DATA_DIR": "state"}, tmp_path) == tmp_path / "state"
    assert launcher.data_dir_from({"DATA_DIR": "/srv/assistant"}, tmp_path) == Path("/srv/assistant")


def test_local_defaults_persist_one_private_secret_key(tmp_path):
    first: dict[str, str] = {}
    launcher.apply_local_defaults(first, tmp_path)
    assert first["DEBUG"] == "false"  # debug pages only when asked for
    assert first["SECURE_COOKIES"] == "false"
    assert first["ALLOWED_HOSTS"].split(",")[:2] == ["localhost", "127.0.0.1"]
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first["SECRET_KEY"]) >= 50

    second: dict[str, str] = {}
    launcher.apply_local_defaults(second, tmp_path)
    assert second["SECRET_KEY"] == first["SECRET_KEY"]


def test_local_defaults_do_not_override_the_environment(tmp_path):
    environ = {"DEBUG": "false", "SECRET_KEY": "mine", "ALLOWED_HOSTS": "example.com"}
    launcher.apply_local_defaults(environ, tmp_path)
    assert environ["DEBUG"] == "false"
    assert environ["SECRET_KEY"] == "mine"
    assert environ["ALLOWED_HOSTS"] == "example.com"
    assert not (tmp_path / "secret_key").exists()


def test_make_run_serves_without_debug_pages_unless_asked(tmp_path):
    environ: dict[str, str] = {}
    launcher.apply_local_defaults(environ, tmp_path)
    assert environ["DEBUG"] == "false"
    assert environ["SECRET_KEY"]  # settings refuse to start without one when DEBUG is off
    asked = {"DEBUG": "true"}
    launcher.apply_local_defaults(asked, tmp_path)
    assert asked["DEBUG"] == "true"


def test_make_run_has_answers_written_by_the_answers_worker_unless_told_otherwise(tmp_path):
    environ: dict[str, str] = {}
    launcher.apply_local_defaults(environ, tmp_path)
    assert environ["ANSWER_RUNNER"] == "worker"
    assert "answers" in supervisor.SERVICE_NAMES  # watched: make run stops if it dies
    told = {"ANSWER_RUNNER": "request"}
    launcher.apply_local_defaults(told, tmp_path)
    assert told["ANSWER_RUNNER"] == "request"


def test_make_run_uvicorn_believes_forwarded_headers_only_from_configured_proxies():
    assert launcher.uvicorn_proxy_args({}) == ["--no-proxy-headers"]
    assert launcher.uvicorn_proxy_args({"FORWARDED_ALLOW_IPS": " "}) == ["--no-proxy-headers"]
    assert launcher.uvicorn_proxy_args({"FORWARDED_ALLOW_IPS": "10.0.0.5, 172.16.0.0/12"}) == [
        "--proxy-headers", "--forwarded-allow-ips", "10.0.0.5,172.16.0.0/12"]
    assert "--no-proxy-headers" in launcher.web_command({}, "127.0.0.1", 8000)


def test_make_run_indexes_with_one_worker_process_per_core_at_one_embedding_thread(tmp_path, monkeypatch):
    environ: dict[str, str] = {}
    launcher.apply_local_defaults(environ, tmp_path)
    assert environ["EMBEDDING_THREADS"] == "1"
    assert environ["EMBEDDING_CACHE_DIR"] == str(tmp_path / "models")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    command = launcher.worker_command(environ)
    assert command[command.index("-Q") + 1] == "default,sync,index"
    assert command[command.index("--concurrency") + 1] == "2"
    assert launcher.worker_command({"WORKER_CONCURRENCY": "1"})[command.index("--concurrency") + 1] == "1"
    with pytest.raises(launcher.LaunchError, match="WORKER_CONCURRENCY"):
        launcher.worker_command({"WORKER_CONCURRENCY": "0"})


def test_a_specific_web_host_is_allowed(tmp_path):
    environ = {"WEB_HOST": "assistant.internal"}
    launcher.apply_local_defaults(environ, tmp_path)
    assert "assistant.internal" in environ["ALLOWED_HOSTS"].split(",")


def test_connect_host_maps_wildcards_to_this_machine():
    assert launcher.connect_host("0.0.0.0") == "127.0.0.1"
    assert launcher.connect_host("::") == "[::1]"
    assert launcher.connect_host("localhost") == "localhost"


def test_static_fingerprint_changes_only_when_static_files_change(tmp_path):
    (tmp_path / "static" / "css").mkdir(parents=True)
    css = tmp_path / "static" / "css" / "app.css"
    css.write_text("body{}")
    before = launcher.static_fingerprint(tmp_path)
    assert launcher.static_fingerprint(tmp_path) == before
    css.write_text("body{color:red}")
    assert launcher.static_fingerprint(tmp_path) != before


class _Stop(Exception):
    pass


class _FakeEmbedded:
    started: list[str] = []

    def __init__(self, *args, **kwargs):
        self.pgdata = Path("/nowhere")
        self.reused = False
        self.log_path = Path("/nowhere/log")

    def alive(self):
        return True

    def stop(self):
        pass


class _FakePostgres(_FakeEmbedded):
    def start(self):
        _FakeEmbedded.started.append("postgres")
        return "postgresql://postgres:@/assistant?host=/tmp/pg"


class _FakeRedis(_FakeEmbedded):
    def start(self):
        _FakeEmbedded.started.append("redis")
        return "/tmp/redis-test/redis.socket"


def _run_until_migrate(monkeypatch, tmp_path, environ):
    """Run the launcher up to its first `manage.py` call, with fake embedded servers."""
    _FakeEmbedded.started = []
    monkeypatch.setattr(supervisor, "EmbeddedPostgres", _FakePostgres)
    monkeypatch.setattr(supervisor, "EmbeddedRedis", _FakeRedis)
    monkeypatch.setattr(supervisor, "port_in_use", lambda host, port: False)

    def stop(self, *args, **kwargs):
        raise _Stop

    monkeypatch.setattr(launcher.Launcher, "manage", stop)
    environ.setdefault("DATA_DIR", str(tmp_path / "data"))
    run = launcher.Launcher(repo=tmp_path, environ=environ)
    with pytest.raises(_Stop):
        run.run()
    return run


def test_launcher_starts_no_embedded_server_for_configured_urls(monkeypatch, tmp_path):
    environ = {
        "DATABASE_URL": "postgres://db.internal/assistant",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "LLM_BASE_URL": "http://vllm.internal/v1",
    }
    run = _run_until_migrate(monkeypatch, tmp_path, environ)
    assert _FakeEmbedded.started == []
    assert run.postgres is None and run.redis is None
    assert environ["DATABASE_URL"] == "postgres://db.internal/assistant"
    assert environ["REDIS_URL"] == "redis://redis.internal:6379/0"
    assert "CELERY_BROKER_URL" not in environ  # settings default it to REDIS_URL


def test_launcher_points_the_app_at_embedded_servers(monkeypatch, tmp_path):
    environ = {"LLM_BASE_URL": "http://vllm.internal/v1"}
    _run_until_migrate(monkeypatch, tmp_path, environ)
    assert _FakeEmbedded.started == ["postgres", "redis"]
    assert environ["DATABASE_URL"] == "postgresql://postgres:@/assistant?host=/tmp/pg"
    # redis-py understands unix://, Celery's kombu redis+socket://
    assert environ["REDIS_URL"] == "unix:///tmp/redis-test/redis.socket"
    assert environ["CELERY_BROKER_URL"] == "redis+socket:///tmp/redis-test/redis.socket"
    assert (tmp_path / "data" / "logs").is_dir()


def test_an_empty_broker_url_in_dotenv_still_gets_the_embedded_broker(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("CELERY_BROKER_URL=\nREDIS_URL=\nSECRET_KEY=\n")
    environ = {"LLM_BASE_URL": "http://vllm.internal/v1"}
    _run_until_migrate(monkeypatch, tmp_path, environ)
    assert environ["CELERY_BROKER_URL"] == "redis+socket:///tmp/redis-test/redis.socket"
    assert environ["SECRET_KEY"]


def test_launcher_reads_dotenv_from_the_repo(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=postgres://from-dotenv/db\nREDIS_URL=redis://r/0\n")
    environ = {"LLM_BASE_URL": "http://vllm.internal/v1"}
    _run_until_migrate(monkeypatch, tmp_path, environ)
    assert _FakeEmbedded.started == []
    assert environ["DATABASE_URL"] == "postgres://from-dotenv/db"


def test_the_embedded_urls_are_understood_by_the_clients():
    import dj_database_url
    import redis
    from kombu import Connection

    db = dj_database_url.parse("postgresql://postgres:@/assistant?host=/tmp/pg")
    assert (db["NAME"], db["USER"], db["OPTIONS"]) == ("assistant", "postgres", {"host": "/tmp/pg"})
    client = redis.Redis.from_url("unix:///tmp/r/redis.socket")
    assert client.connection_pool.connection_kwargs["path"] == "/tmp/r/redis.socket"
    assert Connection("redis+socket:///tmp/r/redis.socket").transport_cls == "redis"


# --- bootstrap_demo ------------------------------------------------------------------------------


def _bootstrap(*args) -> str:
    out = StringIO()
    call_command("bootstrap_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_env(monkeypatch):
    for name in ("DEMO_ADMIN_USERNAME", "DEMO_ADMIN_PASSWORD", "DEMO_ADMIN_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def test_bootstrap_demo_twice_creates_one_admin_and_one_connector(db, demo_env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as first_callbacks:
        first = _bootstrap()
    with django_capture_on_commit_callbacks() as second_callbacks:
        second = _bootstrap()

    User = get_user_model()
    assert User.objects.filter(username="admin", is_superuser=True, is_staff=True).count() == 1
    login_lines = [line for line in first.splitlines() if line.startswith("Admin login: admin / ")]
    assert len(login_lines) == 1
    password = login_lines[0].removeprefix("Admin login: admin / ")
    assert len(password) == 16
    assert authenticate(username="admin", password=password) is not None
    assert "Admin login" not in second and password not in second

    connector = Connector.objects.get(name="Company handbook")
    assert Connector.objects.count() == 1
    assert connector.kind == "folder"
    assert connector.is_public is True
    assert connector.config == {"path": str((settings.BASE_DIR / "samples" / "handbook").resolve())}
    assert os.path.isabs(connector.config["path"])

    # One sync queued (its task is sent on commit), none more while it is pending.
    assert SyncRun.objects.filter(connector=connector, status=SyncRun.Status.QUEUED).count() == 1
    assert len(first_callbacks) == 1
    assert len(second_callbacks) == 0


def test_bootstrap_demo_no_sync_queues_nothing(db, demo_env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        _bootstrap("--no-sync")
    assert Connector.objects.filter(name="Company handbook").exists()
    assert SyncRun.objects.count() == 0
    assert callbacks == []


def test_bootstrap_demo_does_not_resync_an_indexed_connector(db, demo_env, monkeypatch):
    _bootstrap("--no-sync")
    Connector.objects.filter(name="Company handbook").update(last_success_at=timezone.now())
    calls = []
    monkeypatch.setattr("connectors.services.connector_sync_start", lambda **kwargs: calls.append(kwargs))
    _bootstrap()
    assert calls == []


def test_bootstrap_demo_retries_the_first_sync_until_one_succeeds(db, demo_env, monkeypatch):
    _bootstrap("--no-sync")
    connector = Connector.objects.get(name="Company handbook")
    SyncRun.objects.create(connector=connector, status=SyncRun.Status.FAILED)
    calls = []
    monkeypatch.setattr("connectors.services.connector_sync_start", lambda **kwargs: calls.append(kwargs))
    _bootstrap()
    assert [call["connector"] for call in calls] == [connector]


def test_bootstrap_demo_never_echoes_a_chosen_password(db, monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_USERNAME", "root-admin")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "a-chosen-Passw0rd")
    monkeypatch.setenv("DEMO_ADMIN_EMAIL", "it@example.com")
    output = _bootstrap("--no-sync")
    assert "a-chosen-Passw0rd" not in output
    assert "Admin login: root-admin" in output
    user = get_user_model().objects.get(username="root-admin")
    assert user.email == "it@example.com" and user.is_superuser
    assert authenticate(username="root-admin", password="a-chosen-Passw0rd") is not None


# --- clean-up after an earlier run ---------------------------------------------------------------


def _registry(tmp_path, launcher_pid, children):
    run = launcher.Launcher(repo=tmp_path, environ={})
    run.data_dir = tmp_path
    owner = {"pid": launcher_pid, "create_time": _create_time(launcher_pid)}
    run.registry_path.write_text(json.dumps({"launcher": owner, "children": children}))
    return run


def test_a_second_launcher_on_the_same_data_dir_is_refused(tmp_path):
    run = _registry(tmp_path, os.getppid(), [])  # a live process that is not this one
    with pytest.raises(launcher.LaunchError, match="Another launcher"):
        run._leftovers()


def test_services_left_by_a_killed_run_are_found_and_stopped(tmp_path):
    import subprocess

    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        dead_pid = 2**22 - 1  # no such process: the launcher that was killed
        run = _registry(
            tmp_path,
            dead_pid,
            [
                {"name": "web", "pid": orphan.pid, "create_time": _create_time(orphan.pid)},
                {"name": "beat", "pid": orphan.pid, "create_time": 12345.0},  # pid reused by another process
            ],
        )
        leftovers = run._leftovers()
        assert leftovers == {"web": orphan.pid}
        run._stop_leftovers(leftovers)
        assert orphan.wait(timeout=5) is not None
    finally:
        if orphan.poll() is None:
            orphan.kill()
