"""Helpers for answers that query Chinook (tests/connectors/sample_dbs.py's scratch copies): the
database connectors, and an answer whose query result is stored as its first source."""

from __future__ import annotations

from django.contrib.auth.models import Group

from assistant.agent.registry import tool_named
from assistant.chat.models import Conversation, Message
from assistant.chat.services import question_submit
from assistant.rag.citations import finalize_answer
from assistant.rag.sources import sources_record
from connectors.services import connector_save
from tests.agent.conftest import context_for
from tests.connectors.sample_dbs import MY_HOST, MY_PORT, MY_READER, MY_READER_PASSWORD, PG_HOST, PG_PORT, PG_READER

#: Customers for every reader of the connector; invoices for finance only; docs by a per-row group column.
DATASETS = [
    {"name": "customers", "table": "customer", "id_columns": ["customer_id"], "denied_columns": ["email"],
     "description": "Customers of the store"},
    {"name": "invoices", "table": "invoice", "id_columns": ["invoice_id"], "acl": "groups", "acl_groups": ["finance"]},
    {"name": "invoice_lines", "table": "invoice_line", "id_columns": ["invoice_line_id"]},
    {"name": "tracks", "table": "track", "id_columns": ["track_id"]},
    {"name": "genres", "table": "genre", "id_columns": ["genre_id"]},
    {"name": "docs", "table": "doc_acl", "id_columns": ["id"], "acl": "column", "acl_column": "groups"},
]
MY_DATASETS = [
    {"name": "customers", "table": "Customer", "id_columns": ["CustomerId"], "denied_columns": ["Email"]},
    {"name": "invoices", "table": "Invoice", "id_columns": ["InvoiceId"], "acl": "groups", "acl_groups": ["finance"]},
]
SALES_BY_COUNTRY = (
    "SELECT billing_country AS country, count(*) AS invoices, sum(total) AS total FROM invoices "
    "GROUP BY billing_country ORDER BY total DESC, country LIMIT 5"
)


def chinook_postgres(settings, dbname: str, *, engineering: Group, name: str = "Chinook"):
    """The PostgreSQL copy, shared with engineering, questions in SQL allowed; `finance` created."""
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    Group.objects.get_or_create(name="finance")
    return connector_save(
        name=name, kind="postgres", groups=[engineering],
        config={"host": PG_HOST, "port": PG_PORT, "database": dbname, "user": PG_READER, "sql_questions": True,
                "datasets": DATASETS},
    )


def chinook_mariadb(settings, dbname: str, *, engineering: Group, name: str = "Chinook (MariaDB)"):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    Group.objects.get_or_create(name="finance")
    return connector_save(
        name=name, kind="mysql", groups=[engineering],
        config={"host": MY_HOST, "port": MY_PORT, "database": dbname, "user": MY_READER, "sql_questions": True,
                "datasets": MY_DATASETS},
        secrets={"password": MY_READER_PASSWORD},
    )


def answer_with_query(user, sql: str, text: str, *, source: str = "Chinook", chart: dict | None = None) -> Message:
    """An answer as the agent path stores it after one query_database call (the tool run as `user`)."""
    context = context_for(user)
    tool = tool_named("query_database")
    arguments = {"source": source, "sql": sql, **({"chart": chart} if chart else {})}
    tool.run(context, tool.parse(arguments))
    passages = context.book.passages
    rendered, citations = finalize_answer(text, passages)
    conversation = Conversation.objects.create(user=user)
    _question, answer = question_submit(conversation=conversation, content="Which countries buy the most?")
    answer.content, answer.rendered_html, answer.citations = text, rendered, citations
    answer.sources, answer.status = sources_record(passages, citations), Message.Status.COMPLETE
    answer.save()
    return answer
