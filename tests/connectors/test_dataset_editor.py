"""The dataset editor of the database connector form: its JSON endpoints (tables and views, the
columns of a query, a preview of two rows) against the real PostgreSQL and MariaDB sample databases,
the page it lives in, and what it relies on in the source (text columns, denied columns left out)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from connectors.models import Connector
from connectors.services import connector_save
from connectors.sources.base import SourceError
from tests.connectors.sample_dbs import (
    MY_HOST, MY_PORT, MY_READER, MY_READER_PASSWORD, PG_HOST, PG_PORT, PG_READER, my_source, pg_source,
)

pytestmark = pytest.mark.usefixtures("sample_database_servers")

CUSTOMERS_PG = {"name": "customers", "table": "customer", "id_columns": ["customer_id"],
                "title_template": "{first_name} {last_name}", "denied_columns": ["email", "phone"]}
CUSTOMERS_MY = {"name": "customers", "table": "Customer", "id_columns": ["CustomerId"],
                "title_template": "{FirstName} {LastName}", "denied_columns": ["Email", "Phone"]}


@pytest.fixture
def databases(pg_chinook, my_chinook):
    return {
        "postgres": {"host": PG_HOST, "port": str(PG_PORT), "database": pg_chinook, "user": PG_READER, "password": ""},
        "mysql": {"host": MY_HOST, "port": str(MY_PORT), "database": my_chinook, "user": MY_READER,
                  "password": MY_READER_PASSWORD},
    }


def _post(client, url: str, body) -> tuple[int, dict]:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    response = client.post(url, raw, content_type="application/json", HTTP_ACCEPT="application/json")
    return response.status_code, (response.json() if response["Content-Type"].startswith("application/json") else {})


def _tables(client, kind: str, body) -> tuple[int, dict]:
    return _post(client, reverse("connectors:new_tables", args=[kind]), body)


def _preview(client, kind: str, connection: dict, dataset: dict) -> tuple[int, dict]:
    return _post(client, reverse("connectors:new_preview", args=[kind]), {**connection, "dataset": dataset})


# --- tables, views, columns -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_staff_lists_the_tables_and_views_with_their_columns(admin_client, databases, kind):
    status, data = _tables(admin_client, kind, databases[kind])
    assert status == 200, data
    relations = {relation["name"]: relation for relation in data["relations"]}
    customer = relations["customer" if kind == "postgres" else "Customer"]
    assert customer["kind"] == "table"
    columns = {column["name"]: column["type"] for column in customer["columns"]}
    email = "email" if kind == "postgres" else "Email"
    assert re.match(r"(character varying|varchar)\(60\)", columns[email]), columns
    assert list(columns)[0] in ("customer_id", "CustomerId")  # in the table's own order
    assert data["counts"]["tables"] >= 11 and data["database"] == databases[kind]["database"]
    assert databases[kind]["password"] not in json.dumps(data) or not databases[kind]["password"]


def test_a_view_is_listed_as_a_view(admin_client, databases, pg_chinook):
    from tests.connectors.sample_dbs import pg_exec

    pg_exec(pg_chinook, "CREATE OR REPLACE VIEW rock_tracks AS SELECT track_id, name FROM track WHERE genre_id = 1")
    status, data = _tables(admin_client, "postgres", databases["postgres"])
    assert status == 200
    view = next(relation for relation in data["relations"] if relation["name"] == "rock_tracks")
    assert view["kind"] == "view" and [c["name"] for c in view["columns"]] == ["track_id", "name"]


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_the_columns_of_a_select_come_back_with_their_types(admin_client, databases, kind):
    query = ("SELECT track_id, name FROM track" if kind == "postgres" else "SELECT TrackId, Name FROM Track")
    status, data = _tables(admin_client, kind, {**databases[kind], "query": query})
    assert status == 200, data
    assert [column["name"] for column in data["columns"]] == query.split("SELECT ")[1].split(" FROM")[0].split(", ")


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
@pytest.mark.parametrize("query", [
    "DELETE FROM {table}",
    "SELECT scratch_write() AS id",
    "SELECT 1 AS id; DROP TABLE {table}",
])
def test_a_select_that_writes_is_refused_by_the_parser(admin_client, databases, kind, query):
    query = query.format(table="customer" if kind == "postgres" else "Customer")
    status, data = _tables(admin_client, kind, {**databases[kind], "query": query})
    assert status == 400 and data["dataset_field"] == "query", data
    dataset = {"name": "bad", "query": query, "id_columns": ["id"]}
    status, data = _preview(admin_client, kind, databases[kind], dataset)
    assert status == 400 and data["dataset_field"] == "query" and not data["ok"], data
    assert "query" in data["error"].lower()


# --- the preview ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_the_preview_shows_two_documents_without_the_denied_columns(admin_client, databases, kind):
    dataset = CUSTOMERS_PG if kind == "postgres" else CUSTOMERS_MY
    status, data = _preview(admin_client, kind, databases[kind], dataset)
    assert status == 200, data
    documents = data["documents"]
    assert len(documents) == 2
    first = documents[0]
    assert first["title"] == "Luís Gonçalves"
    assert "Gonçalves" in first["text"] and "Embraer" in first["text"]  # every other column, as "name: value"
    text = " ".join(document["text"] for document in documents).lower()
    assert "@" not in text and "email" not in text and "phone" not in text
    assert "fax:" in text  # not denied, so shown
    assert data["denied_columns"] == dataset["denied_columns"]
    assert first["acl"] == {"from_source": False, "public": False, "groups": []}


def test_the_preview_shows_chosen_text_columns_and_a_group_acl(admin_client, databases, engineering):
    dataset = {**CUSTOMERS_PG, "text_columns": ["company", "city", "country"], "acl": "groups",
               "acl_groups": ["engineering"]}
    status, data = _preview(admin_client, "postgres", databases["postgres"], dataset)
    assert status == 200, data
    first = data["documents"][0]
    assert first["text"] == "company: Embraer - Empresa Brasileira de Aeronáutica S.A.\ncity: São José dos Campos\ncountry: Brazil"
    assert first["acl"] == {"from_source": True, "public": False, "groups": ["engineering"]}


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"id_columns": ["nope"]}, "id_columns", "does not have"),
    ({"id_columns": []}, "id_columns", "at least 1"),
    ({"title_template": "{email}"}, "title_template", "denied_columns"),
    ({"text_columns": ["city", "email"]}, "text", "denied_columns"),
    ({"acl": "groups"}, "acl_groups", "acl_groups"),
    ({"acl": "column"}, "acl_column", "acl_column"),
    ({"table": "no_such_table"}, "table", "does not exist"),
    ({"name": "a b"}, "name", "letters, digits"),
])
def test_a_bad_dataset_is_a_400_naming_the_field_to_fix(admin_client, databases, change, field, words):
    status, data = _preview(admin_client, "postgres", databases["postgres"], {**CUSTOMERS_PG, **change})
    assert status == 400, data
    assert data["dataset_field"] == field and words in data["error"], data


@pytest.mark.parametrize(("body", "field", "words"), [
    ("{not json", None, "not valid JSON"),
    ([1, 2], None, "JSON object"),
    ({"dataset": "customers"}, None, "'dataset' must be a JSON object"),
    ({"port": "not a number"}, "port", "port"),
    ({"port": ["5432"]}, "port", "must be text or a number"),
    ({"host": "/var/run/postgresql"}, "host", "unix sockets"),
    ({"database": "no_such_database"}, None, "does not exist"),
])
def test_bad_input_is_a_400_saying_what_to_fix(admin_client, databases, body, field, words):
    if isinstance(body, dict):
        body = {**databases["postgres"], "dataset": CUSTOMERS_PG, **body}
    status, data = _post(admin_client, reverse("connectors:new_preview", args=["postgres"]), body)
    assert status == 400 and not data["ok"], data
    assert data["field"] == field and words in data["error"], data


# --- the guard, staff only, credentials ------------------------------------------------------------


def test_the_guard_refuses_a_private_host_that_is_not_allow_listed(admin_client, databases, settings):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = []
    for url in (reverse("connectors:new_tables", args=["postgres"]), reverse("connectors:new_preview", args=["mysql"])):
        kind = "postgres" if "postgres" in url else "mysql"
        status, data = _post(admin_client, url, {**databases[kind], "dataset": CUSTOMERS_MY})
        assert status == 400 and data["field"] == "host", data
        assert "CONNECTOR_ALLOWED_DB_HOSTS" in data["error"]
    status, data = _tables(admin_client, "postgres", {**databases["postgres"], "host": "10.1.2.3"})
    assert status == 400 and "private" in data["error"]


def test_the_products_own_database_is_refused(admin_client, databases, settings):
    own = settings.DATABASES["default"]["NAME"]
    status, data = _tables(admin_client, "postgres", {**databases["postgres"], "database": own})
    assert status == 400 and data["field"] == "database" and "own database" in data["error"]


@pytest.mark.parametrize("persona", ["owner", "teammate", "outsider"])
def test_people_who_are_not_staff_get_a_404(client, request, databases, persona):
    client.force_login(request.getfixturevalue(persona))
    saved = Connector.objects.create(name="Chinook", kind="postgres", config={})
    for url in (reverse("connectors:new_tables", args=["postgres"]), reverse("connectors:new_preview", args=["postgres"]),
                reverse("connectors:tables", args=[saved.id]), reverse("connectors:preview", args=[saved.id])):
        status, _ = _post(client, url, {**databases["postgres"], "dataset": CUSTOMERS_PG})
        assert status == 404


def test_signed_out_visitors_are_sent_to_sign_in_and_get_is_refused(client, admin_client, databases):
    url = reverse("connectors:new_tables", args=["postgres"])
    assert client.post(url, "{}", content_type="application/json").status_code == 302
    assert admin_client.get(url).status_code == 405
    assert _tables(admin_client, "folder", {})[0] == 404  # not a database kind


def test_a_post_without_the_csrf_token_is_refused(databases, staff):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    status, _ = _tables(client, "postgres", databases["postgres"])
    assert status == 403


@pytest.fixture
def saved_mysql(db, databases):
    mysql = databases["mysql"]
    return connector_save(
        name="Chinook (MariaDB)", kind="mysql",
        config={"host": mysql["host"], "port": int(mysql["port"]), "database": mysql["database"],
                "user": mysql["user"], "datasets": [CUSTOMERS_MY]},
        secrets={"password": MY_READER_PASSWORD},
    )


def test_a_saved_connector_uses_its_stored_password_only_for_its_own_server(admin_client, databases, saved_mysql):
    url = reverse("connectors:preview", args=[saved_mysql.id])
    unsaved = {**databases["mysql"], "password": "", "dataset": CUSTOMERS_MY}
    status, data = _post(admin_client, url, unsaved)
    assert status == 200 and len(data["documents"]) == 2, data
    status, data = _post(admin_client, url, {**unsaved, "host": "localhost"})
    assert status == 400 and data["field"] == "password" and "Type the password again" in data["error"]
    status, data = _post(admin_client, url, {**unsaved, "host": "localhost", "password": MY_READER_PASSWORD})
    assert status == 400 and data["field"] == "host"  # typed again: the guard judges the new host
    assert MY_READER_PASSWORD not in json.dumps(data)


def test_a_refused_password_is_never_echoed(admin_client, databases):
    wrong = "Wrong-Secret-Password-42"
    status, data = _tables(admin_client, "mysql", {**databases["mysql"], "password": wrong})
    assert status == 400 and "refused the user name or password" in data["error"]
    assert wrong not in json.dumps(data)


# --- the page -------------------------------------------------------------------------------------


def test_the_database_form_carries_the_editor_and_keeps_the_json_field(admin_client, db):
    Group.objects.create(name="finance")
    page = admin_client.get(reverse("connectors:create", args=["postgres"])).content.decode()
    assert 'name="datasets"' in page and "data-dataset-editor" in page and 'id="dataset-card-template"' in page
    config = json.loads(re.search(r'<script id="dataset-editor-config" type="application/json">(.*?)</script>',
                                  page, re.S).group(1))
    assert config["tables_url"] == reverse("connectors:new_tables", args=["postgres"])
    assert config["groups"] == ["finance"] and "password" in config["connection_fields"]
    assert "datasets" not in config["connection_fields"]
    assert "<script>" not in page  # no inline script: the config is inert JSON
    folder_page = admin_client.get(reverse("connectors:create", args=["folder"])).content.decode()
    assert "data-dataset-editor" not in folder_page


def test_a_refused_save_places_dataset_errors_for_the_editor(admin_client, databases):
    bad_query = {"name": "bad", "query": "SELECT pg_read_file('/etc/passwd') AS id", "id_columns": ["id"]}
    no_groups = {"name": "nogroups", "table": "album", "id_columns": ["album_id"], "acl": "groups"}

    def save(datasets):
        response = admin_client.post(reverse("connectors:create", args=["postgres"]), {
            "name": "Chinook", **databases["postgres"], "connect_timeout_s": "5", "statement_timeout_s": "30",
            "max_rows_per_dataset": "1000", "datasets": json.dumps(datasets),
        })
        assert response.status_code == 400
        return response.context["form"]

    form = save([CUSTOMERS_PG, bad_query, no_groups])
    assert [(e["dataset"], e["field"]) for e in form.dataset_errors] == [(2, "acl_groups")], form.dataset_errors
    form = save([CUSTOMERS_PG, bad_query, {**no_groups, "acl_groups": ["sales"]}])
    assert [(e["dataset"], e["field"]) for e in form.dataset_errors] == [(1, "query")], form.dataset_errors
    assert "pg_read_file" in form.dataset_errors[0]["message"]
    assert "pg_read_file" in " ".join(form.errors["datasets"])  # still shown without JavaScript
    assert not Connector.objects.exists()


# --- what indexing does with denied and text columns ------------------------------------------------


def test_indexing_leaves_denied_columns_out_of_every_column_text(pg_chinook, my_chinook):
    for source in (pg_source(pg_chinook, [CUSTOMERS_PG]), my_source(my_chinook, [CUSTOMERS_MY])):
        documents = source.preview(3)
        assert len(documents) == 3
        assert all("@" not in doc.text and "mail" not in doc.text.lower() for doc in documents)


def test_a_template_or_column_list_using_a_denied_column_is_refused(pg_chinook):
    for change in ({"text_template": "{city} {email}"}, {"metadata_columns": ["email"]}, {"text_columns": ["email"]}):
        with pytest.raises(SourceError, match="in denied_columns"):
            pg_source(pg_chinook, [{**CUSTOMERS_PG, **change}])
    with pytest.raises(SourceError, match="not both"):
        pg_source(pg_chinook, [{**CUSTOMERS_PG, "text_columns": ["city"], "text_template": "{city}"}])
    with pytest.raises(SourceError, match="text column uses column nope"):
        pg_source(pg_chinook, [{**CUSTOMERS_PG, "text_columns": ["nope"]}]).preview(1)


def test_saving_a_new_host_without_the_password_is_refused_and_keeps_the_stored_one(databases, saved_mysql):
    """Else a staff account could point the connector at its own server and receive the stored
    password at the next sync; the same host with the password left empty keeps it."""
    from connectors.services import ConnectorInvalid, connector_source

    mysql = databases["mysql"]
    config = {"host": mysql["host"], "port": int(mysql["port"]), "database": mysql["database"],
              "user": mysql["user"], "datasets": [CUSTOMERS_MY]}
    for moved in ({"host": "db.example.com"}, {"port": 3307}, {"user": "someone_else"}):
        with pytest.raises(ConnectorInvalid) as refused:
            connector_save(connector=saved_mysql, name=saved_mysql.name, kind="mysql", config={**config, **moved},
                           secrets={"password": ""})
        assert "type the password again" in refused.value.errors["password"]
    saved_mysql.refresh_from_db()
    assert saved_mysql.config["host"] == mysql["host"]
    kept = connector_save(connector=saved_mysql, name=saved_mysql.name, kind="mysql",
                          config={**config, "port": str(mysql["port"])}, secrets={"password": ""})
    assert connector_source(kept).config.password.get_secret_value() == MY_READER_PASSWORD  # same place: kept
