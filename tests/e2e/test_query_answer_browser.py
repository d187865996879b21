"""An answer over a company database in a real browser: the app under uvicorn with the SQL tools
on, a scripted model that describes Chinook (the machine's PostgreSQL), queries it asking for a
bar chart, and answers citing the result [1]. Under the answer: the SQL folded, the rows as a
table that sorts by a click (numbers as numbers), the chart drawn on its canvas beside it, and a
CSV download of the full result run again as the reader. The same after a reload.
Screenshots (light and dark) go to docs/screenshots/.
"""

from __future__ import annotations

import csv
import io

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User

from assistant.accounts import ratelimit
from assistant.chat.assistants import assistant_default
from tests.chat.scripted_llm import Call, Say, ScriptedModel
from tests.chat.sql_answers import chinook_postgres
from tests.conftest import spawn_web, stop_process
from tests.e2e.test_answer_steps_browser import SCREENSHOTS, TRANSITIONS_OVER
from tests.e2e.test_chat_browser import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sample_database_servers")]
LAST = "article.message-assistant:last-of-type"
SQL = ("SELECT billing_country AS country, count(*) AS invoices, sum(total) AS total FROM invoices "
       "GROUP BY billing_country ORDER BY total DESC LIMIT 6")
CHART = {"type": "bar", "x": "country", "y": ["total"], "title": "Sales by country"}
# Canvas pixels that are not transparent: the chart was drawn.
PAINTED = """(canvas) => {
  const { width, height } = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
  return painted;
}"""


@pytest.fixture
def sql_app(transactional_db, settings, pg_chinook, engineering):
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}sql:*"):
        client.delete(key)
    connector = chinook_postgres(settings, pg_chinook, engineering=engineering)
    assistant = assistant_default()
    assistant.tools = ["describe_database", "query_database"]
    assistant.save()
    model = ScriptedModel([
        Call.of(("describe_database", {"source": connector.name})),
        Call.of(("query_database", {"source": connector.name, "sql": SQL, "chart": CHART})),
        Say("The USA bought the most: 91 invoices for 523.06 in all [1]."),
    ])
    process, url = spawn_web("web-sql", LLM_BASE_URL=model.base_url, LLM_MODEL="scripted", LLM_TOOLS="true",
                               LLM_CONNECT_RETRIES="1", LLM_CONTEXT_LENGTH="32768")
    try:
        yield url, model
    finally:
        stop_process(process)
        model.close()


def analyst(engineering) -> None:
    user = User.objects.create_user("analyst", password="analyst-pass-123", first_name="Ana")
    user.groups.add(engineering, Group.objects.get(name="finance"))


def column(result, index: int) -> list[str]:
    return result.locator(f"tbody tr td:nth-child({index})").all_inner_texts()


def check_sorting(result) -> None:
    """Click a header: ascending, numbers as numbers; again: descending; text sorts as text."""
    total = result.locator("th:nth-child(3)")
    total.locator("button").click()
    assert total.get_attribute("aria-sort") == "ascending"
    values = [float(v) for v in column(result, 3)]
    assert values == sorted(values) and len(values) == 6
    total.locator("button").click()
    assert total.get_attribute("aria-sort") == "descending"
    assert column(result, 3)[0] == "523.06" and column(result, 1)[0] == "USA"
    result.locator("th:nth-child(1) button").click()
    countries = column(result, 1)
    assert countries == sorted(countries, key=str.lower) and result.locator("th[aria-sort]").count() == 1


def check_download(page, result) -> None:
    with page.expect_download() as download:
        result.locator("a.query-download").click()
    assert download.value.suggested_filename.startswith("chinook-invoices-")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert rows[0] == ["country", "invoices", "total"] and rows[1] == ["USA", "91", "523.06"] and len(rows) == 7


def screenshots(page, source, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    for scheme, suffix in (("light", ""), ("dark", "-dark")):
        page.emulate_media(color_scheme=scheme)
        page.wait_for_function(TRANSITIONS_OVER)
        source.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / f"{name}{suffix}.png"))
    page.emulate_media(color_scheme="light")


def test_the_answer_shows_the_query_as_a_table_a_chart_and_a_csv(sql_app, browser, engineering):
    sql_app, model = sql_app
    analyst(engineering)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    errors = []  # a script or style the page's CSP refused, a script that failed, a file missing
    page.on("console", lambda message: errors.append(f"{message.text} {message.location['url']}")
            if message.type == "error" and not message.location["url"].endswith("/favicon.ico") else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, sql_app, "analyst", "analyst-pass-123")
    page.fill("#prompt", "Which countries bought the most from us?")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{LAST}[data-status='complete']", timeout=120_000)
    answer = page.locator(LAST)
    assert "523.06" in answer.locator(".message-body").inner_text()
    chip = answer.locator(".message-body a.cite")
    source = answer.locator(".answer-sources li.source-query")
    assert chip.inner_text() == "[1]" and chip.get_attribute("href") == f"#{source.get_attribute('id')}"
    assert "Chinook: invoices" in source.locator(".source-title").inner_text() and "Cited [1]" in source.inner_text()

    sql = source.locator("details.query-sql")
    assert sql.get_attribute("open") is None  # folded
    sql.locator("summary").click()
    assert "sum(total)" in sql.locator("code").inner_text()
    result = source.locator(".query-table")
    assert result.locator("thead th").all_inner_texts() == ["country", "invoices", "total"]
    assert "6 rows" in source.locator(".query-count").inner_text()
    page.wait_for_selector(f"{LAST} .query-chart[data-drawn='true']", timeout=30_000)
    canvas = source.locator(".query-chart canvas")
    assert canvas.evaluate(PAINTED) > 1000 and "Sales by country" in source.locator("figcaption").inner_text()
    box, table_box = canvas.bounding_box(), source.locator(".query-table-wrap").bounding_box()
    assert box["x"] + box["width"] <= table_box["x"]  # the chart beside the table
    screenshots(page, source, "chat-query-result")

    check_sorting(result)
    check_download(page, source)

    page.reload()  # drawn by the server's template, then by the same script
    again = page.locator(f"{LAST} .answer-sources li.source-query")
    again.locator(".query-chart[data-drawn='true']").wait_for(timeout=30_000)
    assert again.locator(".query-chart canvas").evaluate(PAINTED) > 1000
    assert again.locator("tbody tr").count() == 6
    check_sorting(again.locator(".query-table"))
    ask_for_a_pie(page, model)
    assert errors == []


def ask_for_a_pie(page, model) -> None:
    """A second question in the same conversation: its query asks for a pie, drawn in the theme's colours."""
    pie = {"type": "pie", "x": "genre", "y": "tracks", "title": "Tracks bought by genre"}
    sql = ("SELECT g.name AS genre, count(*) AS tracks FROM invoice_lines l JOIN tracks t ON t.track_id = l.track_id "
           "JOIN genres g ON g.genre_id = t.genre_id GROUP BY g.name ORDER BY tracks DESC LIMIT 5")
    model.replay([Call.of(("query_database", {"source": "Chinook", "sql": sql, "chart": pie})),
                  Say("Rock leads with 835 tracks sold [1].")])
    page.fill("#prompt", "Which genres sell the most tracks?")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll(\"article.message-assistant[data-status='complete']\").length === 2", timeout=120_000)
    source = page.locator(f"{LAST} .answer-sources li.source-query")
    source.locator(".query-chart[data-drawn='true']").wait_for(timeout=30_000)
    assert source.locator(".query-chart canvas").evaluate(PAINTED) > 1000
    assert source.locator("tbody tr td:first-child").first.inner_text() == "Rock"
    screenshots(page, source, "chat-query-pie")
