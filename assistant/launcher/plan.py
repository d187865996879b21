"""What `make run` starts and with which settings: the plan (embedded or given services), the
data directory and its secret key, local defaults, the web server's command line, fingerprints of
the static files and migrations (so a second run skips what did not change)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path




REPO_ROOT = Path(__file__).resolve().parent.parent.parent
DATABASE_NAME = "assistant"
STOP_TIMEOUT = 10.0
HEALTH_TIMEOUT = 60.0
LLM_READY_TIMEOUT = 120.0
# The processes this launcher runs for a long time; a dead one stops the whole stack.
SERVICE_NAMES = ("llm", "web", "worker", "answers", "beat")




class LaunchError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


class ShutdownRequested(Exception):
    """Ctrl-C or SIGTERM."""




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
    # Answers are written by the `answers` worker and outlive the browser tab (assistant/chat/answer_relay.py).
    environ.setdefault("ANSWER_RUNNER", "worker")
    # Folder connectors read only under these roots; the demo's "Company handbook" lives here.
    environ.setdefault("CONNECTOR_DATA_DIR", str(REPO_ROOT / "samples" / "handbook"))
    # One embedding thread per process, and one worker process per core (worker_command).
    environ.setdefault("EMBEDDING_THREADS", "1")
    environ.setdefault("EMBEDDING_CACHE_DIR", str(data_dir / "models"))


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


def worker_command(environ: MutableMapping[str, str]) -> list[str]:
    """The Celery worker: every queue, WORKER_CONCURRENCY processes (default: one per core, at most 4).

    Processes at one embedding thread each index faster than one process using every core
    (bench/embed_workers.py; README, "Speed, measured")."""
    processes = _int_env(environ, "WORKER_CONCURRENCY", min(os.cpu_count() or 1, 4))
    if processes < 1:
        raise LaunchError(f"WORKER_CONCURRENCY must be at least 1, got {processes}.")
    return [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", "default,sync,index",
            "--concurrency", str(processes), "--loglevel", "INFO"]


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
