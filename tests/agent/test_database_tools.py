"""describe_database and query_database as the model calls them: through the registry, as one
user, over Chinook on the machine's PostgreSQL; errors come back as tool errors saying what to fix."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group

from assistant.accounts import ratelimit
from assistant.agent.registry import ToolError, tool_named
from connectors.models import AuditEvent
from connectors.services import connector_save
from tests.agent.conftest import context_for
from tests.connectors.sample_dbs import PG_HOST, PG_PORT, PG_READER

pytestmark = pytest.mark.usefixtures("sample_database_servers")


@pytest.fixture(autouse=True)
def clean_counters():
    """Rate-limit counters are per user id, and ids repeat from one test database to the next."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}sql:*"):
        client.delete(key)


@pytest.fixture
def chinook(db, settings, pg_chinook):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    settings.SQL_TOOL_RATE_LIMIT = (3, 60)
    finance = Group.objects.create(name="finance")
    return connector_save(
        name="Chinook", kind="postgres", is_public=True,
        config={"host": PG_HOST, "port": PG_PORT, "database": pg_chinook, "user": PG_READER, "sql_questions": True,
                "datasets": [
                    {"name": "customers", "table": "customer", "id_columns": ["customer_id"],
                     "denied_columns": ["email"], "description": "Customers of the store"},
                    {"name": "invoices", "table": "invoice", "id_columns": ["invoice_id"],
                     "acl": "groups", "acl_groups": [finance.name]},
                ]},
    )


def call(name, user, arguments, **context):
    tool = tool_named(name)
    return tool.run(context_for(user, **context), tool.parse(arguments))


def test_describe_then_query_as_the_model_would(chinook, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    described = call("describe_database", bob, {"source": "Chinook"})
    assert "## customers — Customers of the store" in described.content and "rows: 59" in described.content
    assert "email" not in described.content and "invoices" not in described.content
    assert described.summary == "1 dataset"

    result = call("query_database", bob, {"source": "Chinook",
                                          "sql": "SELECT country, count(*) AS n FROM customers GROUP BY country "
                                                 "ORDER BY n DESC, country LIMIT 3"})
    assert result.content.splitlines()[:5] == ["[1] Chinook: customers", "", "| country | n |", "|---|---|", "| USA | 13 |"]
    assert "Cite this result as [1]." in result.content
    assert result.summary == "3 rows" and not result.truncated
    assert [s["kind"] for s in result.sources] == ["query"]
    assert AuditEvent.objects.filter(action="sql.query", actor=bob).count() == 1


def test_mistakes_come_back_as_tool_errors_that_say_what_to_fix(chinook, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    with pytest.raises(ToolError, match="Datasets you may query: customers"):
        call("query_database", bob, {"source": "Chinook", "sql": "SELECT * FROM invoices"})
    with pytest.raises(ToolError, match="no database source named 'Elsewhere'.*Use one of: Chinook"):
        call("describe_database", bob, {"source": "Elsewhere"})
    with pytest.raises(ToolError, match="Invalid arguments for query_database: sql"):
        tool_named("query_database").parse('{"source": "Chinook"}')
    call("query_database", bob, {"source": "Chinook", "sql": "SELECT 1 FROM customers LIMIT 1"})
    call("query_database", bob, {"source": "Chinook", "sql": "SELECT 1 FROM customers LIMIT 1"})
    with pytest.raises(ToolError, match="Too many database queries: wait"):  # the fourth in a window of 3
        call("query_database", bob, {"source": "Chinook", "sql": "SELECT 1 FROM customers LIMIT 1"})


def test_a_long_result_is_cut_with_a_note(chinook, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    result = call("query_database", bob, {"source": "Chinook", "sql": "SELECT * FROM customers"}, result_tokens=300)
    assert result.truncated and "Only the first" in result.content
    assert "@" not in result.content
