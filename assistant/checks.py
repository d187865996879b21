"""System checks run by `manage.py check --database default` and before `migrate` (the web
container's start): warn when the app could open more connections than PostgreSQL allows."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import connection

from assistant.connection_budget import ConnectionBudget


def planned_budget() -> ConnectionBudget:
    return ConnectionBudget(
        web_processes=settings.WEB_CONCURRENCY,
        pool_size=settings.WEB_DATABASE_POOL_SIZE,
        worker_processes=settings.WORKER_CONCURRENCY,
        answer_threads=settings.ANSWER_WORKER_CONCURRENCY if settings.ANSWER_RUNNER == "worker" else 0,
    )


@register(Tags.database)
def check_connection_budget(app_configs=None, databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        allowed = int(cursor.fetchone()[0])
    budget = planned_budget()
    if budget.needed <= allowed:
        return []
    return [
        Warning(
            f"The app may open {budget.needed} database connections but PostgreSQL allows {allowed}: "
            f"{budget.explain()}.",
            hint="Raise max_connections (POSTGRES_MAX_CONNECTIONS in docker compose), or lower "
            "DATABASE_POOL_SIZE, WEB_CONCURRENCY, WORKER_CONCURRENCY or ANSWER_WORKER_CONCURRENCY.",
            id="assistant.W001",
        )
    ]
