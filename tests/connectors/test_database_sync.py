"""A database connector through the whole sync engine: rows become documents, a changed
row is re-indexed, a deleted row leaves the index, groups come from a column, and the
password is stored encrypted and never shown."""

from __future__ import annotations

import uuid

import psycopg
import pymysql
import pytest

from assistant.rag.retrieval import embed_query, retrieve
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.services import connector_save
from connectors.sync import sync_run_execute

pytestmark = pytest.mark.usefixtures("sample_database_servers")

ROWS = [
    (1, "Expense policy", "Meals on business trips are reimbursed up to 45 euros a day.", "finance"),
    (2, "Badge policy", "Lost badges are replaced at the front desk in building B.", ""),
    (3, "Bonus scheme", "The annual bonus pool is 8 percent of the operating profit.", "finance,board"),
]


@pytest.fixture(params=["postgres", "mysql"])
def policies_db(request):
    """A scratch database with a `policies` table, in PostgreSQL or MariaDB."""
    name = f"scratch_policies_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            # Not the product's own account (postgres here), and no superuser: both are refused.
            conn.execute(f'CREATE ROLE "reader_{name[-8:]}" LOGIN IN ROLE pg_read_all_data')

        def execute(statement, params=()):
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
                conn.execute(statement.replace("%s", "%s"), params)

        execute("CREATE TABLE policies (id int PRIMARY KEY, title text, body text, readers text, "
                "updated_at timestamptz NOT NULL DEFAULT now())")
        settings = {"host": "127.0.0.1", "port": 5432, "database": name, "user": f"reader_{name[-8:]}"}
    else:
        root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        root.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        root.cursor().execute(f"CREATE USER IF NOT EXISTS 'reader_{name[-8:]}'@'%' IDENTIFIED BY 'pa55-word!'")
        root.cursor().execute(f"GRANT SELECT ON `{name}`.* TO 'reader_{name[-8:]}'@'%'")

        def execute(statement, params=()):
            conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=name,
                                   autocommit=True)
            try:
                conn.cursor().execute(statement, params)
            finally:
                conn.close()

        execute("CREATE TABLE policies (id int PRIMARY KEY, title text, body text, readers text, "
                "updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))")
        settings = {"host": "127.0.0.1", "port": 3306, "database": name, "user": f"reader_{name[-8:]}",
                    "password": "pa55-word!"}
    for row in ROWS:
        execute("INSERT INTO policies (id, title, body, readers) VALUES (%s, %s, %s, %s)", row)
    yield request.param, settings, execute
    if request.param == "postgres":
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "reader_{name[-8:]}"')
    else:
        root.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.cursor().execute(f"DROP USER IF EXISTS 'reader_{name[-8:]}'@'%'")
        root.close()


def sync(connector) -> SyncRun:
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    return run


def test_rows_sync_change_and_leave_the_index(db, policies_db, owner, outsider, django_user_model):
    kind, settings, execute = policies_db
    password = settings.pop("password", "")
    connector = connector_save(
        name="Policies", kind=kind, is_public=True,
        config={**settings, "datasets": [{
            "name": "policies", "table": "policies", "id_columns": ["id"], "updated_at_column": "updated_at",
            "title_template": "{title}", "text_template": "{title}\n\n{body}",
            "acl": "column", "acl_column": "readers",
        }]},
        secrets={"password": password} if password else None,
    )
    if password:
        assert password not in str(connector.config) and password not in connector.encrypted_secrets

    first = sync(connector)
    assert first.status == SyncRun.Status.SUCCEEDED, first.error
    assert (first.added, first.failed) == (3, 0)
    bonus = Document.objects.get(connector=connector, title="Bonus scheme")
    assert sorted(bonus.acl_groups) == ["board", "finance"] and not bonus.acl_public
    badge = Document.objects.get(connector=connector, title="Badge policy")
    assert badge.acl_groups == []  # an empty groups column: nobody but via other rules

    execute("UPDATE policies SET body = %s, updated_at = updated_at + interval '1' hour WHERE id = 1"
            if kind == "postgres" else
            "UPDATE policies SET body = %s, updated_at = updated_at + INTERVAL 1 HOUR WHERE id = 1",
            ("Meals on business trips are reimbursed up to 60 euros a day.",))
    execute("DELETE FROM policies WHERE id = 2")
    second = sync(connector)
    assert second.status == SyncRun.Status.SUCCEEDED, second.error
    assert (second.updated, second.deleted) == (1, 1)
    assert "60 euros" in Document.objects.get(connector=connector, title="Expense policy").text
    assert not Document.objects.filter(connector=connector, title="Badge policy").exists()
    assert not Chunk.objects.filter(connector=connector, text__contains="45 euros").exists()

    third = sync(connector)  # nothing changed: the cursor skips every row
    assert (third.added, third.updated, third.deleted) == (0, 0, 0)

    accountant = django_user_model.objects.create_user("accountant", password="x-pass-12345")
    from django.contrib.auth.models import Group

    accountant.groups.add(Group.objects.create(name="finance"))
    question = embed_query("How much is the bonus pool?")
    assert "Bonus scheme" in [p.title for p in retrieve(embedding=question, groups=["finance"], k=3)]
    assert "Bonus scheme" not in [p.title for p in retrieve(embedding=question, groups=["sales"], k=3)]


def test_a_wrong_password_fails_the_run_in_plain_words_without_the_password(db, policies_db):
    kind, settings, _ = policies_db
    if kind == "postgres":
        pytest.skip("the machine's PostgreSQL trusts local connections, so any password is accepted")
    settings.pop("password")
    connector = connector_save(
        name="Policies", kind=kind, config={**settings, "datasets": [
            {"name": "policies", "table": "policies", "id_columns": ["id"]}]},
        secrets={"password": "not-the-password-123"},
    )
    run = sync(connector)
    assert run.status == SyncRun.Status.FAILED
    assert "password" in run.error.lower() and "not-the-password-123" not in run.error
    connector.refresh_from_db()
    assert connector.status == Connector.Status.ERROR and "not-the-password-123" not in connector.last_error
