"""The app warns before it can open more database connections than PostgreSQL allows."""

from __future__ import annotations

from django.db import connection

from assistant.checks import check_connection_budget


def _max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def test_it_warns_when_the_pools_exceed_max_connections(db, settings):
    settings.WEB_CONCURRENCY = 2
    settings.WORKER_CONCURRENCY = 2
    settings.WEB_DATABASE_POOL_SIZE = _max_connections()  # two web processes: twice too many
    [warning] = check_connection_budget(databases=["default"])
    assert warning.id == "assistant.W001"
    assert "POSTGRES_MAX_CONNECTIONS" in warning.hint
    assert f"2 web process(es) x {settings.WEB_DATABASE_POOL_SIZE} pooled connections" in warning.msg


def test_the_default_budget_fits_a_default_postgresql(db, settings):
    settings.WEB_CONCURRENCY = 2
    settings.WORKER_CONCURRENCY = 2
    settings.WEB_DATABASE_POOL_SIZE = 20
    assert _max_connections() >= 100
    assert check_connection_budget(databases=["default"]) == []


def test_it_says_nothing_without_database_checks(settings):
    settings.WEB_DATABASE_POOL_SIZE = 10_000
    assert check_connection_budget(databases=None) == []
