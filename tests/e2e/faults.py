"""Throwaway services for fault tests: a Redis and a PostgreSQL of the test's own, which it may
crash and restart without touching the machine's shared ones."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.conftest import ARTIFACTS, ROOT, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class RedisServer:
    """redis-server on a free port with an append-only file synced on every write."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start: {(self.directory / 'redis.log').read_text()[-2000:]}")

    def crash(self) -> None:
        """SIGKILL: no shutdown save; only what the append-only file holds survives."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def queued(self, queue: str) -> int:
        """Messages waiting in a Celery queue (kombu keeps one list per priority step)."""
        client = self.client()
        return sum(client.llen(key) for key in client.scan_iter(f"{queue}*") if client.type(key) == b"list")


@contextmanager
def celery_broker(url: str):
    """Point this process's Celery app (what `.delay()` publishes to) at another broker."""
    from assistant.celery import app

    def reset():
        # Only forget the pools: kombu keeps one per broker URL in a process-wide registry, and
        # the app takes the original URL's pool back from it afterwards (so it must stay open).
        app._pool = None
        app.amqp._producer_pool = None

    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url = url
    app.conf.task_always_eager = False
    reset()
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        reset()


class PostgresCluster:
    """A PostgreSQL 15 cluster of the test's own (with pgvector), on a free port.

    Run as the `postgres` system user when the tests run as root (initdb refuses root).
    """

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="assistant-pg-", dir="/tmp"))
        self.data = self.directory / "data"
        self.log = ARTIFACTS / "scratch-postgres.log"
        self.port = free_port()
        self._as = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a `postgres` system user for initdb") from None
            shutil.chown(self.directory, "postgres", "postgres")
            ARTIFACTS.mkdir(exist_ok=True)
            self.log.touch()
            shutil.chown(self.log, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.directory, 0o755)

    def url(self, database: str = "assistant") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self._as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args],
            check=True, capture_output=True, timeout=timeout,
        )

    def start(self) -> None:
        subprocess.run(
            [*self._as, str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._pg_ctl("-o", options, "start")

    def restart(self) -> None:
        """A fast restart (-m fast): every open connection is cut, as in a failover."""
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("-m", "immediate", "stop", timeout=30)
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str = "assistant") -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, sql: str, *params, database: str = "assistant"):
        import psycopg

        with psycopg.connect(self.url(database), connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


def django_script(code: str, env: dict[str, str], *, timeout: float = 300) -> str:
    """Run Python with Django set up in a child process (another database than the test's)."""
    result = subprocess.run(
        [sys.executable, "-c", "import django\ndjango.setup()\n" + code],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "assistant.settings"}, capture_output=True, text=True,
        timeout=timeout,
    )
    if result.returncode:
        raise RuntimeError(f"script failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout
