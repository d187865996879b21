"""`manage.py evaluate sql` (assistant/rag/evaluation/sql.py) over Chinook connectors on the real
PostgreSQL and MariaDB: the gold SQL scores 1.0 (the harness checks itself), and a scripted model
server's answers are scored as a reader would judge them — right, wrong, refused, no SQL at all."""

from __future__ import annotations

import json
import re
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from connectors.services import connector_save
from tests.chat.fake_llm import _Handler
from tests.connectors.chinook_sql import MY_TABLES, PG_TABLES, my_table
from tests.connectors.sample_dbs import MY_HOST, MY_PORT, MY_READER, MY_READER_PASSWORD, PG_HOST, PG_PORT, PG_READER

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sample_database_servers")]
QUESTIONS = Path(__file__).resolve().parents[2] / "docs/evaluation/chinook_questions.jsonl"


@pytest.fixture(autouse=True)
def _operator_policy(settings):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]


def _connector(dialect: str, database: str, *, name: str, denied: dict | None = None, **acl):
    tables = PG_TABLES if dialect == "postgres" else MY_TABLES
    datasets = [
        {"name": name_, "table": name_ if dialect == "postgres" else my_table(name_), "id_columns": [columns[0]],
         "denied_columns": list((denied or {}).get(name_, ())), "description": f"Chinook's {name_.replace('_', ' ')}s"}
        for name_, columns in tables.items()
    ]
    host, port, user = (PG_HOST, PG_PORT, PG_READER) if dialect == "postgres" else (MY_HOST, MY_PORT, MY_READER)
    config = {"host": host, "port": port, "database": database, "user": user, "datasets": datasets, "sql_questions": True}
    secrets = {"password": "" if dialect == "postgres" else MY_READER_PASSWORD}
    return connector_save(name=name, kind=dialect, config=config, secrets=secrets, **acl)


def _evaluate(tmp_path, *args) -> dict:
    out = tmp_path / "report.json"
    call_command("evaluate", "sql", "--questions", str(QUESTIONS), "--json-out", str(out), *args)
    return json.loads(out.read_text())


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_the_gold_sql_scores_one(dialect, tmp_path, pg_chinook, my_chinook):
    _connector(dialect, pg_chinook if dialect == "postgres" else my_chinook, name="Chinook", is_public=True)
    report = _evaluate(tmp_path, "--source", "Chinook", "--gold")
    assert report["questions"] >= 60
    assert report["metrics"] == {"execution_accuracy": 1.0, "valid_sql": 1.0, "refused": 0.0, "no_sql": 0.0}
    assert report["settings"]["dialect"] == dialect and report["settings"]["llm_model"] == "gold SQL (no model)"


class _ScriptedSql(_Handler):
    """Answers by question: right SQL (fenced, or bare then prose), wrong SQL, a write, prose only."""

    def answer(self, messages):
        question = messages[-1]["content"]
        if question.startswith("How many tracks are there"):
            return "```sql\nSELECT count(*) FROM track\n```"
        if question.startswith("How many customers are there?"):
            return "SELECT COUNT(*) AS n FROM customer;\nThis counts every customer."
        if question.startswith("How many artists"):
            return "```sql\nSELECT count(*) FROM album\n```"  # the wrong table
        if question.startswith("How many albums"):
            return "```sql\nDELETE FROM album\n```"
        if question.startswith("How many invoices have"):
            return "```sql\nSELECT count(*) FROM invoices\n```"  # no such dataset: refused
        if question.startswith("What is the total of all invoices"):
            return "```sql\nSELECT sum(totl) FROM invoice\n```"  # no such column: fails on the server
        return "There are 25 of them, with a total of 3503 tracks."  # prose: "with" is no SQL


@pytest.fixture
def scripted_model():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedSql)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_models_sql_is_scored_by_execution_as_the_user(tmp_path, pg_chinook, scripted_model):
    sales = Group.objects.create(name="sales")
    analyst = User.objects.create(username="analyst")
    analyst.groups.add(sales)
    _connector("postgres", pg_chinook, name="Chinook", groups=[sales], denied={"customer": ["email"], "employee": ["email"]})
    url = f"http://127.0.0.1:{scripted_model.server_address[1]}/v1"
    report = _evaluate(tmp_path, "--source", "Chinook", "--user", "analyst", "--limit", "7", "--llm-url", url,
                       "--llm-model", "scripted")
    outcomes = [(item["outcome"], item["correct"]) for item in report["items"]]
    assert outcomes == [("ran", True), ("ran", True), ("ran", False), ("refused", False), ("refused", False),
                        ("failed", False), ("no_sql", False)]
    assert report["metrics"] == {"execution_accuracy": round(2 / 7, 4), "valid_sql": round(3 / 7, 4),
                                 "refused": round(2 / 7, 4), "no_sql": round(1 / 7, 4)}
    assert report["items"][1]["sql"] == "SELECT COUNT(*) AS n FROM customer"
    # The model was shown the datasets the analyst may query, with types and sample values, but
    # never a denied column.
    prompt = scripted_model.requests[0]["messages"][0]["content"]
    assert "Table track (3503 rows): Chinook's tracks" in prompt
    assert re.search(r"- unit_price numeric, e\.g\. 0\.99", prompt)
    assert "first_name" in prompt and "email" not in prompt and "@" not in prompt
    assert scripted_model.requests[0]["model"] == "scripted" and len(scripted_model.requests) == 7


def test_a_user_who_may_not_see_the_connector_gets_a_clear_error(tmp_path, pg_chinook):
    _connector("postgres", pg_chinook, name="Chinook")  # no groups, not public
    User.objects.create(username="outsider")
    with pytest.raises(Exception, match="may query no dataset"):
        _evaluate(tmp_path, "--source", "Chinook", "--user", "outsider", "--gold")
