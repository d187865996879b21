"""Where sources may read: the operator's policy, not the admin's form.

The red team's path: a PostgreSQL source with a unix-socket host (trust auth as postgres)
read django_session of the product's own database, and a folder source read /. Here the
product's database is the test database on 127.0.0.1:5432 (settings.DATABASES), the
sample servers are the machine's PostgreSQL and MariaDB, allow-listed per test as an
operator would (CONNECTOR_ALLOWED_DB_HOSTS), and folders live under pytest's temporary
directories (CONNECTOR_DATA_DIR).
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import psycopg
import pymysql
import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from connectors.models import Connector, SyncRun
from connectors.services import ConnectorInvalid, connector_save
from connectors.sources import db_guard
from connectors.sources.base import DestinationRefused, SourceError
from connectors.sources.registry import build_source
from connectors.sync import sync_run_execute

pytestmark = pytest.mark.usefixtures("sample_database_servers")

SUFFIX = uuid.uuid4().hex[:8]
PG_DB, PG_USER = f"scratch_guard_{SUFFIX}", f"scratch_guard_reader_{SUFFIX}"
MY_DB, MY_USER, MY_PASSWORD = f"scratch_guard_{SUFFIX}", f"guard_{SUFFIX}", f"Pw-{SUFFIX}"
NOTES = [{"name": "notes", "table": "notes", "id_columns": ["id"], "title_template": "{title}"}]


def _pg(dbname: str, statement: str) -> None:
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname, autocommit=True) as conn:
        conn.execute(statement)


def _my(statement: str, params=None, database: str | None = None) -> None:
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=database, autocommit=True)
    try:
        conn.cursor().execute(statement, params)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def sample_servers():
    """A small company database on each server, read by an account of its own."""
    _pg("postgres", f'CREATE DATABASE "{PG_DB}"')
    _pg("postgres", f'CREATE ROLE "{PG_USER}" LOGIN IN ROLE pg_read_all_data')
    _pg(PG_DB, "CREATE TABLE notes (id int PRIMARY KEY, title text); INSERT INTO notes VALUES (1, 'Hello')")
    _my(f"CREATE DATABASE `{MY_DB}`")
    _my("CREATE TABLE notes (id INT PRIMARY KEY, title TEXT)", database=MY_DB)
    _my("INSERT INTO notes VALUES (1, 'Hello')", database=MY_DB)
    _my("CREATE USER %s@'%%' IDENTIFIED BY %s", (MY_USER, MY_PASSWORD))
    _my(f"GRANT SELECT ON `{MY_DB}`.* TO %s@'%%'", (MY_USER,))
    try:
        yield
    finally:
        _pg("postgres", f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        _pg("postgres", f'DROP ROLE IF EXISTS "{PG_USER}"')
        _my(f"DROP DATABASE IF EXISTS `{MY_DB}`")
        _my("DROP USER IF EXISTS %s@'%%'", (MY_USER,))


def pg(host="127.0.0.1", database=PG_DB, user=PG_USER, datasets=NOTES, **extra):
    return build_source("postgres", {"host": host, "port": 5432, "database": database, "user": user,
                                     "datasets": datasets, "connect_timeout_s": 3, **extra})


def my(host="127.0.0.1", database=MY_DB, user=MY_USER, **extra):
    return build_source("mysql", {"host": host, "port": 3306, "database": database, "user": user,
                                  "datasets": NOTES, "connect_timeout_s": 3, **extra}, {"password": MY_PASSWORD})


def product_db() -> dict:
    return django_settings.DATABASES["default"]


# --- the host --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["/var/run/postgresql", "/tmp", "@abstract-socket", "db1,db2", "../run"])
@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_a_socket_or_path_is_never_a_host(kind, host):
    config = {"host": host, "database": "sales", "user": "reader", "datasets": NOTES}
    with pytest.raises(SourceError) as caught:
        build_source(kind, config)
    message = str(caught.value)
    assert message.startswith(f"Invalid {kind} settings: host: ")
    assert "host name or IP address" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1", "0.0.0.0", "::1", "10.0.0.5",
                                  "192.168.1.20", "169.254.169.254"])
def test_loopback_and_private_addresses_are_refused_without_the_allow_list(settings, sample_servers, host):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = []
    for source in (pg(host=host), my(host=host)):
        with pytest.raises(DestinationRefused) as caught:
            source.check()
        assert "Refused to connect to" in str(caught.value)
        assert "CONNECTOR_ALLOWED_DB_HOSTS" in str(caught.value)
        assert caught.value.setting == "host"


def test_an_allow_listed_host_is_read(settings, sample_servers):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1", "localhost:3306"]
    assert "notes (table notes): 1 row" in pg().check()
    assert "notes (table notes): 1 row" in my(host="localhost").check()
    with pytest.raises(DestinationRefused, match="Refused to connect to localhost"):
        pg(host="localhost").check()  # allowed on MariaDB's port only


def test_dns_rebinding_cannot_redirect_the_connection(settings, sample_servers, monkeypatch):
    """The name answers a public address to the check and 127.0.0.1 afterwards: the drivers
    connect to the address that was checked (PostgreSQL hostaddr, MySQL the IP), never
    resolve the name again, so the local server is not reached."""
    settings.CONNECTOR_ALLOWED_DB_HOSTS = []
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "192.0.0.170" if len(lookups) % 2 else "127.0.0.1"  # public-looking, then local
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(db_guard, "address_problem", lambda ip: "a loopback address" if ip.is_loopback else None)
    for source in (pg(host="rebind.test", connect_timeout_s=1), my(host="rebind.test", connect_timeout_s=1)):
        lookups.clear()
        with pytest.raises(SourceError, match="rebind.test"):
            source.check()  # 192.0.0.170 is no database server; reading the local rows would pass
        assert lookups == ["rebind.test"]


# --- the product's own database --------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2"])
def test_the_products_own_database_is_refused_even_when_allow_listed(settings, sample_servers, host):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1", "localhost", "127.0.0.2"]
    own = product_db()["NAME"]
    steal = [{"name": "s", "query": "SELECT session_key AS id, session_data FROM django_session", "id_columns": ["id"]}]
    for name in (own, own.upper()):
        source = pg(host=host, database=name, datasets=steal)
        own_database = rf"^Database {name} at {host}:5432 is the assistant's own"
        with pytest.raises(DestinationRefused, match=own_database) as caught:
            source.check()
        assert caught.value.setting == "database"
        with pytest.raises(DestinationRefused):
            list(source.iter_documents())  # every sync connection checks again


def test_the_products_account_is_refused_on_its_server(settings, sample_servers):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1", "localhost"]
    own_user = product_db()["USER"]
    for host in ("127.0.0.1", "localhost"):
        with pytest.raises(DestinationRefused, match=rf"^User {own_user} is the assistant's own database account"):
            pg(host=host, user=own_user).check()
    # Another database on that server, with an account of its own: allowed (it is allow-listed).
    assert "1 row" in pg(host="localhost").check()


def test_the_products_server_needs_the_allow_list_for_another_database(settings, sample_servers, monkeypatch):
    """Were the product's database on a public address, another database on that server is
    still off limits until the operator allows the host."""
    settings.CONNECTOR_ALLOWED_DB_HOSTS = []
    monkeypatch.setattr(db_guard, "address_problem", lambda ip: None)  # as if 127.0.0.1 were public
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1:5432 is the server of the assistant's own database"):
        pg().check()


def test_a_socket_configured_product_database_is_recognised_on_loopback(settings, sample_servers):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    settings.DATABASES = {"default": {**product_db(), "HOST": "/var/run/postgresql", "NAME": PG_DB}}
    with pytest.raises(DestinationRefused, match="is the assistant's own database"):
        pg().check()


# --- on save: the form shows what to fix ------------------------------------------------------


def _post_pg(client, **fields):
    data = {"name": "Sales", "host": "127.0.0.1", "port": "5432", "database": PG_DB, "user": PG_USER,
            "password": "", "connect_timeout_s": "3", "statement_timeout_s": "30",
            "max_rows_per_dataset": "1000", "datasets": json.dumps(NOTES), **fields}
    return client.post(reverse("connectors:create", args=["postgres"]), data)


def _field_error(response, field: str) -> str:
    html = response.content.decode()
    start = html.index(f'id="id_{field}_error"')
    return html[start:start + 600]


def test_the_form_shows_a_refused_host_next_to_the_field(client, staff, settings, sample_servers):
    client.force_login(staff)
    settings.CONNECTOR_ALLOWED_DB_HOSTS = []
    response = _post_pg(client)
    assert response.status_code == 400
    assert "CONNECTOR_ALLOWED_DB_HOSTS" in _field_error(response, "host")
    response = _post_pg(client, host="/var/run/postgresql")
    assert "unix sockets and paths are not allowed" in _field_error(response, "host")
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    response = _post_pg(client, database=product_db()["NAME"])
    assert "the assistant&#x27;s own database" in _field_error(response, "database")
    response = _post_pg(client, datasets=json.dumps([{**NOTES[0], "table": None,
                                                      "query": "SELECT pg_read_file('/etc/passwd') AS id"}]))
    assert "calls pg_read_file(), which is not on the list of allowed functions" in _field_error(response, "datasets")
    assert not Connector.objects.exists()
    response = _post_pg(client)
    assert response.status_code == 302 and Connector.objects.get().config["host"] == "127.0.0.1"


def test_a_sync_checks_the_host_again(db, settings, sample_servers):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    connector = connector_save(name="Sales", kind="postgres", config={
        "host": "127.0.0.1", "database": PG_DB, "user": PG_USER, "datasets": NOTES})
    settings.CONNECTOR_ALLOWED_DB_HOSTS = []  # the operator withdrew the allowance
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "CONNECTOR_ALLOWED_DB_HOSTS" in run.error


# --- folders and JSON Lines files -------------------------------------------------------------


@pytest.fixture
def data_root(settings, tmp_path):
    root = tmp_path / "data"
    (root / "handbook").mkdir(parents=True)
    (root / "handbook" / "leave.md").write_text("# Leave\n\n27 days.\n")
    (root / "export.jsonl").write_text('{"id": "1", "text": "hello"}\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n")
    (outside / "secret.jsonl").write_text('{"id": "s", "text": "secret"}\n')
    settings.CONNECTOR_DATA_DIR = [str(root)]
    return root


def _folder(path):
    return build_source("folder", {"path": str(path)})


def _jsonl(path):
    return build_source("jsonl", {"path": str(path)})


@pytest.mark.parametrize("path", ["/", "/etc", "/etc/passwd", "{root}/../outside", "{root}/handbook/../../outside"])
def test_paths_outside_the_data_roots_are_refused(data_root, path):
    path = path.format(root=data_root)
    for source in (_folder(path), _jsonl(path)):
        with pytest.raises(DestinationRefused, match=r"is outside the allowed data folders") as caught:
            source.check()
        assert str(data_root) in str(caught.value) and "CONNECTOR_DATA_DIR" in str(caught.value)
        assert caught.value.setting == "path"
        with pytest.raises(DestinationRefused):
            list(source.iter_documents())


def test_a_link_inside_a_root_that_leads_outside_is_refused(data_root):
    os.symlink(data_root.parent / "outside", data_root / "shortcut")
    os.symlink(data_root.parent / "outside" / "secret.jsonl", data_root / "export-link.jsonl")
    with pytest.raises(DestinationRefused, match=r"shortcut \(it resolves to .*/outside\) is outside"):
        _folder(data_root / "shortcut").check()
    with pytest.raises(DestinationRefused, match=r"export-link.jsonl \(it resolves to .*/secret.jsonl\) is outside"):
        _jsonl(data_root / "export-link.jsonl").check()
    # A link among the files of an allowed folder is not followed out of it.
    os.symlink(data_root.parent / "outside" / "secret.md", data_root / "handbook" / "secret.md")
    assert [item.external_id for item in _folder(data_root / "handbook").iter_documents()] == ["leave.md"]


def test_paths_under_any_of_several_roots_are_read(settings, data_root, tmp_path):
    settings.CONNECTOR_DATA_DIR = [str(tmp_path / "elsewhere"), str(data_root)]
    assert "1 supported files" in _folder(data_root / "handbook").check()
    assert "1 lines" in _jsonl(data_root / "export.jsonl").check()
    settings.CONNECTOR_DATA_DIR = []
    with pytest.raises(DestinationRefused, match="CONNECTOR_DATA_DIR is empty"):
        _folder(data_root / "handbook").check()


def test_a_folder_swapped_for_a_link_after_saving_is_refused_at_sync(db, data_root):
    (data_root / "docs").mkdir()
    connector = connector_save(name="Docs", kind="folder", config={"path": str(data_root / "docs")}, is_public=True)
    (data_root / "docs").rmdir()
    os.symlink(data_root.parent / "outside", data_root / "docs")
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and "is outside the allowed data folders" in run.error
    assert not connector.documents.exists()


def test_saving_a_folder_outside_the_roots_names_the_path_field(db, data_root):
    with pytest.raises(ConnectorInvalid) as caught:
        connector_save(name="Root", kind="folder", config={"path": "/"})
    assert "path" in caught.value.errors and "outside the allowed data folders" in caught.value.errors["path"]


def test_the_form_shows_a_refused_folder_next_to_the_path_field(client, staff, data_root):
    client.force_login(staff)
    for path in ("/", "/etc", f"{data_root}/../outside"):
        response = client.post(reverse("connectors:create", args=["folder"]),
                               {"name": "Everything", "path": path, "max_file_bytes": "1000"})
        assert response.status_code == 400
        assert "is outside the allowed data folders" in _field_error(response, "path")
    assert not Connector.objects.exists()


# --- the operator's settings ------------------------------------------------------------------


def test_data_roots_setting_takes_several_folders_and_refuses_slash(monkeypatch, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    from assistant.env import env_folders, env_hosts
    from assistant.settings import BASE_DIR

    monkeypatch.setenv("CONNECTOR_DATA_DIR", f"{tmp_path}/a, {tmp_path}/b:samples/handbook")
    assert env_folders("CONNECTOR_DATA_DIR", "./data", base=BASE_DIR) == [
        f"{tmp_path}/a", f"{tmp_path}/b", str(BASE_DIR / "samples" / "handbook")]
    monkeypatch.setenv("CONNECTOR_DATA_DIR", f"{tmp_path},/")
    with pytest.raises(ImproperlyConfigured, match="CONNECTOR_DATA_DIR must not include /"):
        env_folders("CONNECTOR_DATA_DIR", "./data", base=BASE_DIR)
    monkeypatch.setenv("CONNECTOR_ALLOWED_DB_HOSTS", "db.internal, 10.0.0.5:5433, /var/run/postgresql")
    with pytest.raises(ImproperlyConfigured, match="'/var/run/postgresql' is not a host name"):
        env_hosts("CONNECTOR_ALLOWED_DB_HOSTS")


def test_make_run_allows_the_demo_handbook_folder(settings, tmp_path, monkeypatch):
    from assistant import launcher
    from assistant.env import env_folders

    environ: dict[str, str] = {}
    launcher.apply_local_defaults(environ, tmp_path)
    handbook = launcher.REPO_ROOT / "samples" / "handbook"
    assert environ["CONNECTOR_DATA_DIR"] == str(handbook)
    monkeypatch.setenv("CONNECTOR_DATA_DIR", environ["CONNECTOR_DATA_DIR"])
    settings.CONNECTOR_DATA_DIR = env_folders("CONNECTOR_DATA_DIR", "./data", base=settings.BASE_DIR)
    assert "supported files" in _folder(handbook.resolve()).check()  # the demo connector's path
