"""Questions in SQL through connectors (connectors/sql_questions.py): only database connectors that
allow them and that the reader may see; datasets by their ACL; denied columns never come back;
every query audited; errors say what to fix and never carry a credential."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from connectors.models import AuditEvent
from connectors.services import connector_save
from connectors.sql_questions import SqlQuestionError, database_describe, database_query, sql_connectors_visible
from tests.connectors.sample_dbs import MY_HOST, MY_PORT, MY_READER, MY_READER_PASSWORD, PG_HOST, PG_PORT, PG_READER

pytestmark = pytest.mark.usefixtures("sample_database_servers")

PG_DATASETS = [
    {"name": "customers", "table": "customer", "id_columns": ["customer_id"], "description": "Our customers",
     "denied_columns": ["email", "phone", "fax"]},
    {"name": "invoices", "table": "invoice", "id_columns": ["invoice_id"], "acl": "groups", "acl_groups": ["finance"]},
    {"name": "docs", "table": "doc_acl", "id_columns": ["id"], "acl": "column", "acl_column": "groups"},
]


@pytest.fixture
def chinook_connectors(db, pg_chinook, my_chinook):
    sales = Group.objects.create(name="sales")
    pg = connector_save(
        name="Chinook", kind="postgres", is_public=True,
        config={"host": PG_HOST, "port": PG_PORT, "database": pg_chinook, "user": PG_READER,
                "datasets": PG_DATASETS, "sql_questions": True},
    )
    my = connector_save(
        name="Chinook (MariaDB)", kind="mysql", groups=[sales],
        config={"host": MY_HOST, "port": MY_PORT, "database": my_chinook, "user": MY_READER, "sql_questions": True,
                "datasets": [{"name": "tracks", "table": "Track", "id_columns": ["TrackId"],
                              "denied_columns": ["Composer"]}]},
        secrets={"password": MY_READER_PASSWORD},
    )
    off = connector_save(
        name="Chinook (no SQL)", kind="postgres", is_public=True,
        config={"host": PG_HOST, "port": PG_PORT, "database": pg_chinook, "user": PG_READER, "datasets": PG_DATASETS},
    )
    return pg, my, off


def test_only_connectors_that_allow_sql_and_that_the_reader_sees(chinook_connectors):
    assert [c.name for c in sql_connectors_visible(groups=[])] == ["Chinook"]
    assert [c.name for c in sql_connectors_visible(groups=["sales"])] == ["Chinook", "Chinook (MariaDB)"]
    for name in ("Chinook (no SQL)", "Chinook (MariaDB)", "nope"):
        with pytest.raises(SqlQuestionError, match="Use one of: Chinook"):
            database_query(user=None, groups=[], connector_name=name, sql="SELECT 1")


def test_describe_lists_what_the_reader_may_query(chinook_connectors):
    described = {d.name: d for d in database_describe(groups=["engineering"], connector_name="Chinook")}
    assert set(described) == {"customers", "docs"}  # invoices: finance only
    customers = described["customers"]
    assert customers.description == "Our customers" and customers.row_count == 59
    names = [name for name, _type in customers.columns]
    assert "email" not in names and "first_name" in names and len(customers.samples) == 3
    assert dict(customers.columns)["customer_id"] in ("int4", "integer")
    assert described["docs"].row_count == 1  # the rows of the reader's groups only
    assert "invoices" in {d.name for d in database_describe(groups=["finance"], connector_name="Chinook")}


def test_a_query_is_governed_and_audited(chinook_connectors, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    result = database_query(user=alice, groups=["hr"], connector_name="Chinook",
                            sql="SELECT title FROM docs UNION ALL SELECT first_name FROM customers WHERE customer_id = 1")
    assert sorted(row[0] for row in result.rows) == ["Luís", "Salaries"]
    event = AuditEvent.objects.filter(action="sql.query").latest("created_at")
    assert event.actor == alice and event.target_label == "Chinook"
    assert event.details["rows"] == 2 and event.details["sql_run"].startswith("WITH governed_1")

    with pytest.raises(SqlQuestionError, match=r"refused: it reads invoices.*Datasets you may query: customers, docs"):
        database_query(user=alice, groups=["hr"], connector_name="Chinook", sql="SELECT * FROM invoices")
    assert "refused" in AuditEvent.objects.filter(action="sql.query").latest("created_at").details
    with pytest.raises(SqlQuestionError, match="database refused the query.*email"):
        database_query(user=alice, groups=["hr"], connector_name="Chinook", sql="SELECT email FROM customers")


def test_mariadb_by_group_with_a_denied_column(chinook_connectors):
    result = database_query(user=None, groups=["sales"], connector_name="Chinook (MariaDB)",
                            sql="SELECT * FROM tracks ORDER BY TrackId LIMIT 2")
    assert "Composer" not in result.columns and len(result.rows) == 2 and result.rows[0][0] == 1


def test_a_wrong_password_is_an_error_without_the_password(chinook_connectors):
    _pg, my, _off = chinook_connectors
    connector_save(connector=my, name=my.name, kind=my.kind, config=my.config, groups=list(my.groups.all()),
                   secrets={"password": "Wrong-Secret-123"})
    with pytest.raises(SqlQuestionError) as failed:
        database_query(user=None, groups=["sales"], connector_name="Chinook (MariaDB)", sql="SELECT 1 FROM tracks")
    assert "Wrong-Secret-123" not in str(failed.value) and MY_READER_PASSWORD not in str(failed.value)
    assert "cannot be read now" in str(failed.value)
