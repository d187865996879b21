#!/bin/sh
# Entry point of the assistant's image: one image, several roles.
#
#   entrypoint.sh web            wait for PostgreSQL, apply migrations, serve the ASGI app (uvicorn)
#   entrypoint.sh worker         wait until migrations are applied, run a Celery worker
#   entrypoint.sh beat           wait until migrations are applied, run Celery beat
#   entrypoint.sh manage ARGS    run `python manage.py ARGS` (createsuperuser, shell, ...)
#   entrypoint.sh ANYTHING ELSE  exec it as is (bash, python, ...)
#
# Every setting comes from the environment (see .env.example). Each role ends in `exec`, so the
# server is PID 1 of its container and receives docker's SIGTERM for a graceful shutdown.
set -eu

# Wait until the database accepts connections; with --migrated, also until `web` has applied
# every migration, so workers never run tasks against a half-migrated schema.
# Gives up after DB_WAIT_TIMEOUT seconds (default 120) with a non-zero exit status.
wait_for_database() {
    python - "$@" <<'PY'
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
django.setup()

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

need_migrated = "--migrated" in sys.argv[1:]
timeout = float(os.environ.get("DB_WAIT_TIMEOUT") or 120)
deadline = time.monotonic() + timeout
reason = ""
while True:
    try:
        connection.ensure_connection()
        if need_migrated:
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if not pending:
                break
            reason = f"{len(pending)} migration(s) not applied yet"
        else:
            break
    except Exception as exc:  # the server is starting, or the network is not up yet
        # The class name only: driver messages can carry connection details.
        reason = f"database not reachable ({type(exc).__name__})"
        connection.close()
    if time.monotonic() >= deadline:
        print(f"entrypoint: gave up after {timeout:.0f}s: {reason}", file=sys.stderr)
        sys.exit(1)
    print(f"entrypoint: waiting: {reason}", file=sys.stderr, flush=True)
    time.sleep(2)
connection.close()
PY
}

role="${1:-web}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "$role" in
    web)
        wait_for_database
        python manage.py migrate --noinput
        # X-Forwarded-* only from FORWARDED_ALLOW_IPS (the value Django reads), from no one when empty.
        if [ -n "${FORWARDED_ALLOW_IPS:-}" ]; then
            set -- --proxy-headers --forwarded-allow-ips "$FORWARDED_ALLOW_IPS" "$@"
        else
            set -- --no-proxy-headers "$@"
        fi
        exec uvicorn assistant.asgi:application \
            --host 0.0.0.0 --port 8000 \
            --workers "${WEB_CONCURRENCY:-2}" \
            "$@"
        ;;
    worker)
        wait_for_database --migrated
        # WORKER_CONCURRENCY processes embedding on one thread each index faster than one process
        # on every core (bench/embed_workers.py; README, "Speed, measured").
        export EMBEDDING_THREADS="${EMBEDDING_THREADS:-1}"
        exec celery -A assistant worker \
            -Q "${WORKER_QUEUES:-default,sync,index}" \
            --concurrency "${WORKER_CONCURRENCY:-2}" \
            --loglevel INFO \
            "$@"
        ;;
    answers)
        # Answers wait on the model most of the time: one process, many threads (ANSWER_RUNNER=worker).
        wait_for_database --migrated
        exec celery -A assistant worker \
            -Q answer \
            --pool threads --concurrency "${ANSWER_WORKER_CONCURRENCY:-16}" \
            --hostname "answers@%h" \
            --loglevel INFO \
            "$@"
        ;;
    beat)
        wait_for_database --migrated
        exec celery -A assistant beat \
            --loglevel INFO \
            --schedule /tmp/celerybeat-schedule \
            "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
