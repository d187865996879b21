"""`make test` on a bare machine: the suite against the machine's PostgreSQL and Redis when they
answer at the test URLs, else against the embedded ones `make run` uses, started for the run.

    python -m assistant.launcher.for_tests [pytest arguments]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/assistant) and REDIS_URL are tried
first; what does not answer is replaced by an embedded server with its data under
DATA_DIR/test (pytest creates and drops its own test database there). The embedded PostgreSQL
carries pgvector 0.6: tests that need 0.8's iterative scans say so when they skip, and so do
the tests that read the sample PostgreSQL and MariaDB servers as sources.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

from assistant.launcher.embedded import EmbeddedPostgres, EmbeddedRedis
from assistant.launcher.plan import REPO_ROOT, data_dir_from

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/assistant"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def answers(url: str, default_port: int) -> bool:
    """A TCP server listens where the URL points (a unix socket URL: its file exists)."""
    parts = urlsplit(url)
    if parts.scheme.startswith(("unix", "redis+socket")) or (not parts.hostname and "host=/" in parts.query):
        return os.path.exists(parts.path or parts.query.split("host=", 1)[-1])
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    env = os.environ
    data_dir = data_dir_from(env) / "test"
    started = []
    try:
        if not answers(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL, 5432):
            postgres = EmbeddedPostgres(data_dir)
            env["DATABASE_URL"] = postgres.start()
            started.append(postgres)
            print(f"make test: nothing answers at the test database; embedded PostgreSQL in {postgres.pgdata}")
        if not answers(env.get("REDIS_URL") or DEFAULT_REDIS_URL, 6379):
            (data_dir / "logs").mkdir(parents=True, exist_ok=True)
            redis = EmbeddedRedis(data_dir, data_dir / "logs")
            socket_path = redis.start()
            started.append(redis)
            # redis-py reads unix://, Celery (kombu) reads redis+socket://: one socket, two spellings.
            env["REDIS_URL"] = f"unix://{socket_path}?db=14"
            env["CELERY_BROKER_URL"] = f"redis+socket://{socket_path}?virtual_host=14"
            print(f"make test: nothing answers at the test Redis; embedded Redis on {socket_path}")
        sys.stdout.flush()
        return subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=REPO_ROOT, env=env)
    finally:
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
