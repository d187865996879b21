"""Questions over a company database through the real answer pipeline: the scripted model calls
describe_database then query_database over Chinook (PostgreSQL, then MariaDB), and answers citing
the query result [1]; the answer keeps the query as its source, with the chart asked for."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group

from assistant.accounts import ratelimit
from assistant.chat.assistants import assistant_default
from assistant.chat.models import Message
from tests.chat.scripted_llm import Call, Say
from tests.chat.sql_answers import chinook_mariadb, chinook_postgres
from tests.chat.test_agent_loop import ask, steps_of

pytestmark = pytest.mark.usefixtures("sample_database_servers")

QUESTION = "Which countries bought the most from us?"
SQL = {
    "postgres": ("SELECT billing_country AS country, sum(total) AS total FROM invoices "
                 "GROUP BY billing_country ORDER BY total DESC LIMIT 3"),
    "mysql": ("SELECT BillingCountry AS country, sum(Total) AS total FROM invoices "
              "GROUP BY BillingCountry ORDER BY total DESC LIMIT 3"),
}


@pytest.fixture(autouse=True)
def clean_counters():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}sql:*"):
        client.delete(key)


@pytest.fixture(params=["postgres", "mysql"])
def chinook(request, settings, engineering, owner):
    """The connector of one dialect; the owner in finance, the default assistant offered the SQL tools."""
    if request.param == "postgres":
        connector = chinook_postgres(settings, request.getfixturevalue("pg_chinook"), engineering=engineering)
    else:
        connector = chinook_mariadb(settings, request.getfixturevalue("my_chinook"), engineering=engineering)
    owner.groups.add(Group.objects.get(name="finance"))
    assistant = assistant_default()
    assistant.tools = ["describe_database", "query_database"]
    assistant.save()
    return request.param, connector


@pytest.mark.django_db(transaction=True)
def test_the_answer_cites_the_query_result_and_keeps_it_as_a_source(chinook, owner, scripted):
    dialect, connector = chinook
    chart = {"type": "bar", "x": "country", "y": ["total"], "title": "Sales by country"}
    model = scripted([
        Call.of(("describe_database", {"source": connector.name})),
        Call.of(("query_database", {"source": connector.name, "sql": SQL[dialect], "chart": chart})),
        Say("The USA bought the most, 523.06 in all [1]."),
    ])
    answer, events = ask(owner, QUESTION)

    assert answer.status == Message.Status.COMPLETE
    assert [s["tool"] for s in steps_of(events) if s["status"] == "done"] == ["describe_database", "query_database"]
    [streamed] = steps_of(events)[-1]["sources"]  # the query step, as the page received it live
    assert streamed["kind"] == "query" and "access" not in streamed and "connector_id" not in streamed
    described, queried = (content for _name, content in model.tool_results(2))
    assert "## invoices" in described and "## customers" in described
    assert queried.startswith(f"[1] {connector.name}: invoices") and "| USA | 523.06 |" in queried
    assert "Cite this result as [1]." in queried and "bar chart" in queried

    assert answer.content == "The USA bought the most, 523.06 in all [1]."
    [citation] = answer.citations
    assert citation["n"] == 1 and citation["kind"] == "query" and not citation["inferred"]
    [source] = answer.sources
    assert source["kind"] == "query" and source["cited"] and source["sql"] == SQL[dialect]
    assert source["columns"] == ["country", "total"] and source["rows"][0] == ["USA", "523.06"]
    assert source["chart"] == chart and source["row_count"] == 3
    done = events[-1][1]
    assert done["sources"][0]["rows"] == source["rows"] and "access" not in done["sources"][0]
    assert done["citations"][0]["available"] and 'href="#query-' in done["html"]
