"""A query result as a numbered source (assistant/rag/query_sources.py): what is stored with the
answer, what a reader is shown now, and its CSV download, re-run governed as the reader who asks
(owner / owner who lost the dataset's group / teammate / outsider)."""

from __future__ import annotations

import csv
import io

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.urls import reverse

from assistant.accounts import ratelimit
from assistant.agent.registry import PassageBook, ToolError
from assistant.agent.tools.query_result import json_value
from assistant.chat.answering import message_payload
from assistant.chat.api import messages_json
from assistant.chat.selectors import citations_shown, steps_and_sources_shown
from assistant.rag.query_sources import query_passage
from assistant.rag.retrieval import Passage
from connectors.models import AuditEvent
from connectors.principals import user_principal
from tests.chat.sql_answers import SALES_BY_COUNTRY, answer_with_query, chinook_postgres

pytestmark = pytest.mark.usefixtures("sample_database_servers")

ANSWER = "The USA bought the most: 91 invoices for 523.06 [1]."


@pytest.fixture(autouse=True)
def clean_counters():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}sql:*"):
        client.delete(key)


@pytest.fixture
def chinook(db, settings, pg_chinook, engineering):
    return chinook_postgres(settings, pg_chinook, engineering=engineering)


@pytest.fixture
def finance_owner(owner):
    owner.groups.add(Group.objects.get(name="finance"))
    return owner


@pytest.fixture
def answer(chinook, finance_owner):
    return answer_with_query(finance_owner, SALES_BY_COUNTRY, ANSWER,
                             chart={"type": "bar", "x": "country", "y": "total", "title": "Sales by country"})


def download(client, user, answer, query_id=None):
    client.force_login(user)
    query_id = query_id or answer.sources[0]["query_id"]
    return client.get(reverse("chat:query_csv", args=[answer.id, query_id]))


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_query_is_a_numbered_cited_source_with_what_the_model_saw(answer, chinook):
    [source] = answer.sources
    assert source["kind"] == "query" and source["n"] == 1 and source["cited"]
    assert source["title"] == "Chinook: invoices" and source["connector_id"] == str(chinook.id)
    assert source["sql"] == SALES_BY_COUNTRY and source["columns"] == ["country", "invoices", "total"]
    assert source["rows"][0] == ["USA", 91, "523.06"] and source["row_count"] == 5 and not source["truncated"]
    assert source["chart"] == {"type": "bar", "x": "country", "y": ["total"], "title": "Sales by country"}
    assert source["access"]["datasets"]["invoices"]["acl"] == "groups"
    [citation] = answer.citations
    assert citation["kind"] == "query" and citation["n"] == 1 and SALES_BY_COUNTRY in citation["quote"]
    assert f'href="#query-{source["query_id"]}"' in answer.rendered_html


def test_the_owner_is_shown_the_query_but_never_its_access_record(answer, finance_owner):
    payload = message_payload(answer, finance_owner)
    [shown] = payload["sources"]
    assert shown["rows"][0] == ["USA", 91, "523.06"] and shown["chart"]["type"] == "bar"
    assert "access" not in shown and "connector_id" not in shown
    assert shown["url"] == reverse("chat:query_csv", args=[answer.id, shown["query_id"]])
    assert payload["citations"][0]["available"] and 'class="cite"' in payload["html"]
    [step_source] = steps_and_sources_shown(user=finance_owner, messages=[answer])[answer.id]["sources"]
    assert step_source["query_id"] == shown["query_id"]


def test_a_reader_who_lost_the_datasets_group_is_shown_neither_rows_nor_citation(answer, finance_owner):
    finance_owner.groups.remove(Group.objects.get(name="finance"))
    payload = message_payload(answer, finance_owner)
    assert payload["sources"] == []
    assert payload["citations"] == [{"n": 1, "available": False}]
    assert "cite-unavailable" in payload["html"] and "#query-" not in payload["html"]


def test_a_column_denied_since_withholds_the_stored_rows(answer, chinook, finance_owner):
    chinook.config["datasets"][1]["denied_columns"] = ["total"]
    chinook.save()
    assert citations_shown(user=finance_owner, messages=[answer])[answer.id] == [{"n": 1, "available": False}]
    chinook.config["sql_questions"] = False  # the admin turned questions in SQL off
    chinook.config["datasets"][1]["denied_columns"] = []
    chinook.save()
    assert message_payload(answer, finance_owner)["sources"] == []


def test_the_owner_downloads_the_full_result_run_again_as_them(client, answer, finance_owner, chinook):
    response = download(client, finance_owner, answer)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="chinook-invoices-')
    rows = csv_rows(response)
    assert rows[0] == ["country", "invoices", "total"] and rows[1] == ["USA", "91", "523.06"] and len(rows) == 6
    event = AuditEvent.objects.filter(action="sql.download").get()
    assert event.actor == finance_owner and event.target_label == "Chinook" and event.details["rows"] == 5


def test_a_reader_who_may_no_longer_query_gets_403_and_nothing_runs(client, answer, finance_owner):
    finance_owner.groups.remove(Group.objects.get(name="finance"))
    assert download(client, finance_owner, answer).status_code == 403
    assert not AuditEvent.objects.filter(action="sql.download").exists()


def test_teammate_and_outsider_get_404_for_someone_elses_answer(client, answer, teammate, outsider):
    teammate.groups.add(Group.objects.get(name="finance"))  # even one who may query the same data
    assert download(client, teammate, answer).status_code == 404
    assert download(client, outsider, answer).status_code == 404
    assert not AuditEvent.objects.filter(action="sql.download").exists()


def test_an_unknown_query_is_404_and_a_visitor_is_sent_to_sign_in(client, answer, finance_owner):
    assert download(client, finance_owner, answer, "00000000-0000-0000-0000-000000000000").status_code == 404
    client.logout()
    response = client.get(reverse("chat:query_csv", args=[answer.id, answer.sources[0]["query_id"]]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_cells_a_spreadsheet_would_run_are_quoted_and_numbers_kept(client, chinook, finance_owner):
    sql = ("SELECT '=HYPERLINK(\"http://evil.example\")' AS link, '+1' AS plus, '@SUM(A1)' AS at, "
           "'-2+3' AS minus_text, -5 AS minus_number, first_name FROM customers ORDER BY customer_id LIMIT 2")
    answer = answer_with_query(finance_owner, sql, "Two customers [1].")
    rows = csv_rows(download(client, finance_owner, answer))
    assert rows[1] == ["'=HYPERLINK(\"http://evil.example\")", "'+1", "'@SUM(A1)", "'-2+3", "-5", "Luís"]


def test_a_download_stops_at_the_cap_and_says_so(client, settings, chinook, finance_owner):
    answer = answer_with_query(finance_owner, "SELECT customer_id, country FROM customers ORDER BY customer_id",
                               "Customers [1].")
    assert answer.sources[0]["row_count"] == 59
    settings.SQL_TOOL_DOWNLOAD_ROWS = 7
    response = download(client, finance_owner, answer)
    rows = csv_rows(response)
    assert len(rows) == 8 and rows[-1][0] == "7" and response["X-Rows-Truncated"] == "true"


def test_downloads_share_the_query_tools_rate_limit(client, settings, answer, finance_owner):
    settings.SQL_TOOL_RATE_LIMIT = (1, 60)  # the answer's own query spent the one allowed
    response = download(client, finance_owner, answer)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_a_chart_that_names_a_missing_or_text_column_is_a_tool_error(chinook, finance_owner):
    with pytest.raises(ToolError, match="x column 'nation' is not in the result; its columns are: country"):
        answer_with_query(finance_owner, SALES_BY_COUNTRY, "", chart={"type": "bar", "x": "nation", "y": "total"})
    with pytest.raises(ToolError, match="y column 'country' holds values that are not numbers"):
        answer_with_query(finance_owner, SALES_BY_COUNTRY, "", chart={"type": "pie", "x": "total", "y": ["country"]})
    with pytest.raises(ToolError, match="a pie chart plots one y column"):
        answer_with_query(finance_owner, SALES_BY_COUNTRY, "",
                          chart={"type": "pie", "x": "country", "y": ["total", "invoices"]})


def test_rows_read_for_a_group_are_withheld_once_the_reader_leaves_it(chinook, finance_owner, sales):
    finance_owner.groups.add(sales)  # docs rows: Roadmap (engineering, sales), Salaries (hr)
    answer = answer_with_query(finance_owner, "SELECT title FROM docs ORDER BY id", "The roadmap [1].")
    assert answer.sources[0]["rows"] == [["Roadmap"]]
    # the reader's principals when the rows were read: their groups and themselves (connectors.principals)
    assert answer.sources[0]["access"]["groups"] == ["engineering", "finance", "sales", user_principal(finance_owner.id)]
    finance_owner.groups.remove(sales)  # still in engineering: the connector and dataset stay theirs
    assert message_payload(answer, finance_owner)["sources"] == []


def test_the_json_api_gives_the_query_with_an_absolute_download_link(rf, answer, finance_owner):
    [message] = messages_json(rf.get("/api/v1/"), finance_owner, [answer])
    [source] = message["sources"]
    assert source["kind"] == "query" and source["url"].startswith("http://testserver/chat/answers/")
    assert source["rows"][0] == ["USA", 91, "523.06"] and "access" not in source


def test_a_query_is_numbered_after_the_passages_and_each_query_apart():
    book = PassageBook()
    book.add([Passage(n=1, chunk_id=7, document_id="d", title="Doc", location="", url="", connector="c",
                      text="text", start_char=0, end_char=4)])
    first = query_passage({"query_id": "q1", "title": "Chinook: invoices", "connector": "Chinook"}, "SELECT 1")
    second = query_passage({"query_id": "q2", "title": "Chinook: invoices", "connector": "Chinook"}, "SELECT 2")
    assert [p.n for p in book.add([first, second])] == [2, 3]
    assert [p.n for p in book.add([first])] == [2] and first.document_url == "#query-q1"


def test_cells_are_stored_as_the_browser_can_sort_and_plot_them():
    import datetime as dt
    import decimal

    assert [json_value(v) for v in (None, True, 3, 2**60, 1.5, float("nan"), decimal.Decimal("1.10"),
                                    dt.date(2024, 1, 2), b"\x00\x01", "x" * 600)] == [
        None, True, 3, str(2**60), 1.5, "nan", "1.10", "2024-01-02", "<2 bytes>", "x" * 499 + "…"]
