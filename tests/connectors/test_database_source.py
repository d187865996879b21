"""The PostgreSQL and MySQL/MariaDB sources against the machine's real servers.

Each test session loads Chinook (both dialects) and Northwind (PostgreSQL) into scratch
databases with unique names, adds a few scratch tables and roles, and drops them all at
the end. No Django database is used. Also covers connectors.secrets.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import time
import uuid
from pathlib import Path

import psycopg
import pymysql
import pytest
from cryptography.fernet import Fernet
from psycopg import sql
from pymysql.constants import CLIENT

from connectors.secrets import SecretsError, decrypt_secrets, derive_key, encrypt_secrets, parse_keys, rotate
from connectors.sources.base import SourceDocument, SourceError
from connectors.sources.database import (
    MySQLSource,
    PostgresSource,
    quote_mysql_identifier,
    render_template,
)
from connectors.sources.registry import SOURCES, build_source
from connectors.sources.sql_policy import check_select, to_sql

pytestmark = pytest.mark.usefixtures("sample_database_servers")

from tests.connectors.sample_dbs import (  # noqa: F401 - fixtures and helpers shared with the SQL tool's tests
    MY_ADMIN, MY_HOST, MY_PASSWORD, MY_PORT, MY_READER, MY_READER_PASSWORD, MY_USER, PG_ADMIN, PG_HOST,
    PG_NOREAD_ROLE, PG_PORT, PG_READER, SAMPLES, SUFFIX, free_port, my_connect, my_exec, my_source, pg_connect,
    pg_exec, pg_source,
)

TRACKS_PG = """
    SELECT t.track_id, t.name AS track, ar.name AS artist, al.title AS album, g.name AS genre,
           t.composer, t.unit_price
    FROM track t
    JOIN album al ON al.album_id = t.album_id
    JOIN artist ar ON ar.artist_id = al.artist_id
    LEFT JOIN genre g ON g.genre_id = t.genre_id
"""
TRACKS_MY = """
    SELECT t.TrackId AS track_id, t.Name AS track, ar.Name AS artist, al.Title AS album, g.Name AS genre,
           t.Composer AS composer, t.UnitPrice AS unit_price
    FROM Track t
    JOIN Album al ON al.AlbumId = t.AlbumId
    JOIN Artist ar ON ar.ArtistId = al.ArtistId
    LEFT JOIN Genre g ON g.GenreId = t.GenreId
"""


def _tracks(query: str, **extra) -> dict:
    return {
        "name": "tracks",
        "query": query,
        "id_columns": ["track_id"],
        "title_template": "{track} by {artist}",
        "text_template": "{track} by {artist} on {album}\nGenre: {genre}\nComposer: {composer}\nPrice: {unit_price}",
        "metadata_columns": ["genre", "unit_price"],
        **extra,
    }



def docs(source, **kwargs) -> list[SourceDocument]:
    items = list(source.iter_documents(**kwargs))
    assert all(isinstance(item, SourceDocument) for item in items), items
    return items




# --- documents -------------------------------------------------------------------------------------


def test_it_registers_both_kinds():
    assert SOURCES["postgres"] is PostgresSource
    assert SOURCES["mysql"] is MySQLSource
    assert PostgresSource.secret_fields == MySQLSource.secret_fields == ("password",)
    dataset = {"name": "a", "table": "t", "id_columns": ["id"]}
    minimal = {"host": "h", "database": "d", "user": "u", "datasets": [dataset]}
    assert PostgresSource.Config(**minimal).port == 5432
    assert MySQLSource.Config(**minimal).port == 3306


def test_it_renders_a_query_dataset_the_same_in_both_dialects(pg_chinook, my_chinook):
    pg_docs = {d.external_id: d for d in docs(pg_source(pg_chinook, [_tracks(TRACKS_PG)]))}
    my_docs = {d.external_id: d for d in docs(my_source(my_chinook, [_tracks(TRACKS_MY)]))}

    assert len(pg_docs) == len(my_docs) == 3503
    first = pg_docs["tracks:1"]
    assert first.title == "For Those About To Rock (We Salute You) by AC/DC"
    assert first.text == (
        "For Those About To Rock (We Salute You) by AC/DC on For Those About To Rock We Salute You\n"
        "Genre: Rock\nComposer: Angus Young, Malcolm Young, Brian Johnson\nPrice: 0.99"
    )
    assert first.media_type == "text/plain" and first.content == b""
    assert first.location == f"{pg_chinook}.tracks (track_id=1)"
    assert first.metadata == {
        "dataset": "tracks",
        "table": None,
        "row": {"track_id": 1},
        "genre": "Rock",
        "unit_price": 0.99,
    }
    assert first.acl_groups is None and first.acl_public is None  # the connector's ACL
    # NULL composer renders as empty text; the literal backslashes survive in both dialects.
    assert "Cavalleria Rusticana \\ Act \\ Intermezzo Sinfonico" in pg_docs["tracks:3435"].title
    for external_id, pg_doc in pg_docs.items():
        my_doc = my_docs[external_id]
        assert (my_doc.title, my_doc.text, my_doc.metadata) == (pg_doc.title, pg_doc.text, pg_doc.metadata), external_id


def test_it_reads_a_table_dataset_with_templates_and_metadata(pg_chinook, my_chinook):
    pg = pg_source(
        pg_chinook,
        [{"name": "albums", "table": "public.album", "id_columns": ["album_id"], "title_template": "{title}",
          "text_template": "Album {title} (artist #{artist_id:03d})", "metadata_columns": ["artist_id"]}],
    )
    my = my_source(
        my_chinook,
        [{"name": "albums", "table": "Album", "id_columns": ["AlbumId"], "title_template": "{Title}",
          "text_template": "Album {Title} (artist #{ArtistId:03d})", "metadata_columns": ["ArtistId"]}],
    )
    pg_docs, my_docs = docs(pg), docs(my)
    assert len(pg_docs) == len(my_docs) == 347
    album = pg_docs[0]
    assert album.external_id == "albums:1"
    assert album.title == "For Those About To Rock We Salute You"
    assert album.text == "Album For Those About To Rock We Salute You (artist #001)"
    assert album.location == f"{pg_chinook}.public.album (album_id=1)"
    assert album.metadata == {"dataset": "albums", "table": "public.album", "row": {"album_id": 1}, "artist_id": 1}
    assert [d.text for d in my_docs] == [d.text for d in pg_docs]
    assert my_docs[0].metadata == {"dataset": "albums", "table": "Album", "row": {"AlbumId": 1}, "ArtistId": 1}


def test_it_writes_all_columns_as_name_value_lines(pg_chinook, pg_northwind):
    employee = docs(pg_source(pg_chinook, [{"name": "staff", "table": "employee", "id_columns": ["employee_id"]}]))[0]
    assert employee.title == "staff 1"  # no title template: the dataset and id
    assert employee.text.splitlines() == [
        "employee_id: 1",
        "last_name: Adams",
        "first_name: Andrew",
        "title: General Manager",
        "birth_date: 1962-02-18 00:00:00",
        "hire_date: 2002-08-14 00:00:00",
        "address: 11120 Jasper Ave NW",
        "city: Edmonton",
        "state: AB",
        "country: Canada",
        "postal_code: T5K 2N1",
        "phone: +1 (780) 428-9482",
        "fax: +1 (780) 428-3457",
        "email: andrew@chinookcorp.com",
    ]  # reports_to is NULL: left out

    source = pg_source(
        pg_northwind,
        [
            {"name": "categories", "table": "categories", "id_columns": ["category_id"],
             "title_template": "{category_name}"},
            {"name": "products", "table": "products", "id_columns": ["product_id"], "title_template": "{product_name}",
             "metadata_columns": ["unit_price", "discontinued"]},
        ],
    )
    by_id = {d.external_id: d for d in docs(source)}
    assert by_id["categories:1"].text == (
        "category_id: 1\ncategory_name: Beverages\ndescription: Soft drinks, coffees, teas, beers, and ales"
    )  # the bytea picture is left out
    chai = by_id["products:1"]
    assert chai.title == "Chai"
    assert "unit_price: 18\n" in chai.text and "quantity_per_unit: 10 boxes x 30 bags" in chai.text
    assert chai.metadata["unit_price"] == 18.0 and chai.metadata["discontinued"] == 1
    assert len(by_id) == 8 + 77


def test_it_keeps_metadata_columns_json_serialisable(pg_chinook, my_chinook):
    pg = pg_source(pg_chinook, [{"name": "invoices", "table": "invoice", "id_columns": ["invoice_id"],
                                 "title_template": "Invoice {invoice_id} of {invoice_date:%Y-%m-%d}",
                                 "metadata_columns": ["invoice_date", "total", "billing_country"]}])
    my = my_source(my_chinook, [{"name": "invoices", "table": "Invoice", "id_columns": ["InvoiceId"],
                                 "title_template": "Invoice {InvoiceId} of {InvoiceDate:%Y-%m-%d}",
                                 "metadata_columns": ["InvoiceDate", "Total", "BillingCountry"]}])
    pg_first, my_first = pg.preview(limit=1)[0], my.preview(limit=1)[0]
    assert pg_first.title == my_first.title == "Invoice 1 of 2021-01-01"
    assert pg_first.metadata == {
        "dataset": "invoices", "table": "invoice", "row": {"invoice_id": 1},
        "invoice_date": "2021-01-01T00:00:00", "total": 1.98, "billing_country": "Germany",
    }
    assert my_first.metadata["InvoiceDate"] == "2021-01-01T00:00:00" and my_first.metadata["Total"] == 1.98
    json.dumps([d.metadata for d in docs(pg)])


def test_it_takes_groups_from_an_acl_column(pg_chinook, my_chinook):
    def acl_of(source):
        return {d.external_id: (d.acl_public, d.acl_groups) for d in docs(source)}

    expected = {
        "acl:1": (False, ("engineering", "sales")),
        "acl:2": (False, ("hr",)),
        "acl:3": (False, ()),  # no groups: nobody but admins, never everybody
    }
    base = {"name": "acl", "table": "doc_acl", "id_columns": ["id"], "title_template": "{title}", "acl": "column"}
    assert acl_of(pg_source(pg_chinook, [{**base, "acl_column": "groups"}])) == expected
    assert acl_of(pg_source(pg_chinook, [{**base, "acl_column": "group_list"}])) == expected  # text[]
    assert acl_of(my_source(my_chinook, [{**base, "acl_column": "groups"}])) == expected
    assert acl_of(my_source(my_chinook, [{**base, "acl_column": "group_json"}])) == expected  # JSON array


def test_it_sets_fixed_groups_or_public(pg_chinook):
    base = {"name": "acl", "table": "doc_acl", "id_columns": ["id"]}
    fixed = docs(pg_source(pg_chinook, [{**base, "acl": "groups", "acl_groups": ["sales", " engineering", "sales"]}]))
    assert {(d.acl_public, d.acl_groups) for d in fixed} == {(False, ("engineering", "sales"))}
    public = docs(pg_source(pg_chinook, [{**base, "acl": "public"}]))
    assert {(d.acl_public, d.acl_groups) for d in public} == {(True, ())}
    with pytest.raises(SourceError, match="acl 'groups' needs acl_groups"):
        pg_source(pg_chinook, [{**base, "acl": "groups"}])
    with pytest.raises(SourceError, match="acl 'column' needs acl_column"):
        pg_source(pg_chinook, [{**base, "acl": "column"}])


# --- incremental syncs, deletions, retries ----------------------------------------------------------


T0 = dt.datetime(2024, 5, 1, 9, 0, 0, 123456)


@pytest.fixture(params=["postgres", "mysql"])
def changes_table(request, pg_chinook, my_chinook):
    """A fresh scratch table with an updated_at column: (kind, dbname, table, execute, make_source)."""
    table = f"changes_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        db, execute, make = pg_chinook, pg_exec, pg_source
        pg_exec(db, sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, body text, updated_at timestamptz)").format(
            sql.Identifier(table)))
        ts = lambda d: d.replace(tzinfo=dt.UTC)  # noqa: E731
    else:
        db, execute, make = my_chinook, my_exec, my_source
        my_exec(db, f"CREATE TABLE `{table}` (id INT PRIMARY KEY, body TEXT, updated_at DATETIME(6))")
        ts = lambda d: d  # noqa: E731
    ident = sql.Identifier(table) if request.param == "postgres" else f"`{table}`"

    def run(template: str, params=()):
        statement = sql.SQL(template).format(t=ident) if request.param == "postgres" else template.format(t=ident)
        return execute(db, statement, params)

    run("INSERT INTO {t} VALUES (1, 'one', %s), (2, 'two', %s), (3, 'three', %s), (4, 'undated', NULL)",
        (ts(T0), ts(T0 + dt.timedelta(hours=1)), ts(T0 + dt.timedelta(hours=2))))
    dataset = {"name": "changes", "table": table, "id_columns": ["id"], "updated_at_column": "updated_at",
               "title_template": "Row {id}", "text_template": "{body}"}
    yield request.param, run, ts, lambda settings=None, **kw: make(db, [{**dataset, **kw}], **(settings or {}))
    if request.param == "postgres":
        pg_exec(db, sql.SQL("DROP TABLE {}").format(ident))
    else:
        my_exec(db, f"DROP TABLE `{table}`")


def test_it_reads_only_rows_changed_since_the_checkpoint(changes_table):
    kind, run, ts, make = changes_table
    source = make()
    first = docs(source)
    assert [d.text for d in first] == (
        ["one", "two", "three", "undated"] if kind == "postgres" else ["undated", "one", "two", "three"]
    )  # ordered by updated_at (NULLs: where each server sorts them), then id
    checkpoint = json.loads(json.dumps(source.checkpoint))  # stored as JSON by the engine
    assert checkpoint["cursors"] == {"changes": ts(T0 + dt.timedelta(hours=2)).isoformat()}
    assert first[0 if kind == "postgres" else 1].modified_at == T0.replace(tzinfo=dt.UTC)

    again = make()
    assert docs(again, since=checkpoint) == []
    assert docs(make(), since={"cursors": checkpoint["cursors"]}) == []  # cursors alone are honoured too
    assert again.checkpoint["cursors"] == checkpoint["cursors"]  # kept when nothing changed

    later = ts(T0 + dt.timedelta(days=1))
    run("UPDATE {t} SET body = 'one, edited', updated_at = %s WHERE id = 1", (later,))
    third = make()
    changed = docs(third, since=checkpoint)
    assert [(d.external_id, d.text) for d in changed] == [("changes:1", "one, edited")]
    assert changed[0].modified_at == later.replace(tzinfo=dt.UTC)
    assert third.checkpoint["cursors"] == {"changes": later.isoformat()}

    # A changed dataset definition invalidates its cursor: the next sync reads it in full.
    retitled = make(title_template="Entry {id}")
    assert len(docs(retitled, since=third.checkpoint)) == 4


def test_it_lists_ids_so_changed_and_deleted_rows_show(changes_table):
    _kind, run, _ts, make = changes_table
    assert make().list_ids() == {"changes:1", "changes:2", "changes:3", "changes:4"}
    run("DELETE FROM {t} WHERE id = 2")
    run("UPDATE {t} SET body = 'three, edited' WHERE id = 3")
    source = make()
    assert source.list_ids() == {"changes:1", "changes:3", "changes:4"}
    assert {d.external_id: d.text for d in docs(source)}["changes:3"] == "three, edited"
    assert source.estimated_total() == 3


def test_it_fetches_rows_by_id(pg_chinook, my_chinook):
    pg = pg_source(pg_chinook, [
        {"name": "pt", "table": "playlist_track", "id_columns": ["playlist_id", "track_id"]},
        _tracks(TRACKS_PG),
    ])
    my = my_source(my_chinook, [
        {"name": "pt", "table": "PlaylistTrack", "id_columns": ["PlaylistId", "TrackId"]},
        _tracks(TRACKS_MY),
    ])
    wanted = ["pt:1|3402", "tracks:3435", "tracks:999999", "pt:18|597", "unknown:1", "tracks:1|2"]
    for source in (pg, my):
        fetched = {d.external_id: d for d in source.fetch(wanted)}
        assert set(fetched) == {"pt:1|3402", "pt:18|597", "tracks:3435"}
        assert fetched["tracks:3435"].title.startswith("Cavalleria Rusticana \\ Act")
    assert pg.fetch([]) is not None and list(pg.fetch([])) == []


def test_it_escapes_separators_in_ids(pg_chinook, my_chinook):
    # A literal % in a query reaches the server intact (both drivers use % for parameters).
    query = (
        "SELECT * FROM (SELECT 'a|b' AS code, 'c:d' AS part UNION ALL SELECT '50%', 'x') AS v "
        "WHERE code LIKE '%' AND part NOT LIKE '%%%s'"
    )
    for source in (
        pg_source(pg_chinook, [{"name": "odd", "query": query, "id_columns": ["code", "part"]}]),
        my_source(my_chinook, [{"name": "odd", "query": query, "id_columns": ["code", "part"]}]),
    ):
        ids = source.list_ids()
        assert ids == {"odd:a%7Cb|c%3Ad", "odd:50%25|x"}
        assert {d.external_id for d in docs(source)} == ids
        assert [d.metadata["row"] for d in source.fetch(["odd:a%7Cb|c%3Ad"])] == [{"code": "a|b", "part": "c:d"}]


def test_it_pages_through_composite_keys_on_mysql(my_chinook):
    source = my_source(my_chinook, [{"name": "pt", "table": "PlaylistTrack", "id_columns": ["PlaylistId", "TrackId"]}])
    read = [d.external_id for d in docs(source)]
    assert len(read) == len(set(read)) == 8715
    assert set(read) == source.list_ids()


def test_it_stops_at_the_row_limit_with_a_warning(pg_chinook, my_chinook):
    for source in (
        pg_source(pg_chinook, [_tracks(TRACKS_PG)], max_rows_per_dataset=10),
        my_source(my_chinook, [_tracks(TRACKS_MY)], max_rows_per_dataset=10),
    ):
        read = docs(source)
        assert [d.external_id for d in read] == [f"tracks:{n}" for n in range(1, 11)]
        assert len(source.warnings) == 1 and "stopped after 10 rows" in source.warnings[0]
        assert "more than 10 rows" in source.check()
        assert source.estimated_total() == 10


def test_it_steps_the_cursor_back_when_the_limit_cuts_rows_with_one_timestamp(changes_table):
    _kind, run, ts, make = changes_table
    run("UPDATE {t} SET updated_at = %s WHERE id IN (2, 3)", (ts(T0 + dt.timedelta(hours=1)),))
    run("UPDATE {t} SET updated_at = %s WHERE id = 4", (ts(T0 - dt.timedelta(hours=1)),))
    # Now: 4 at T0-1h, 1 at T0, 2 and 3 at T0+1h; a limit of 3 cuts between 2 and 3.
    source = make(settings={"max_rows_per_dataset": 3})
    assert [d.external_id for d in docs(source)] == ["changes:4", "changes:1", "changes:2"]
    assert source.checkpoint["cursors"] == {"changes": ts(T0).isoformat()}  # not T0+1h: row 3 would be lost
    follow_up = make(settings={"max_rows_per_dataset": 3})
    assert [d.external_id for d in docs(follow_up, since=source.checkpoint)] == ["changes:2", "changes:3"]
    assert follow_up.checkpoint["cursors"] == {"changes": ts(T0 + dt.timedelta(hours=1)).isoformat()}


# --- check(), in plain words ----------------------------------------------------------------------


def test_it_summarises_a_good_connection(pg_chinook, my_chinook):
    artists = {"name": "artists", "table": "artist", "id_columns": ["artist_id"]}
    pg_summary = pg_source(pg_chinook, [_tracks(TRACKS_PG), artists]).check()
    assert pg_summary.startswith("Connected to PostgreSQL 15.")
    assert "tracks (query): 3,503 rows" in pg_summary and "artists (table artist): 275 rows" in pg_summary
    my_summary = my_source(my_chinook, [_tracks(TRACKS_MY)]).check()
    assert "MariaDB" in my_summary or "MySQL" in my_summary
    assert "tracks (query): 3,503 rows" in my_summary


def test_it_previews_the_first_rows_as_documents(pg_chinook, my_chinook):
    for source in (pg_source(pg_chinook, [_tracks(TRACKS_PG)]), my_source(my_chinook, [_tracks(TRACKS_MY)])):
        preview = source.preview(limit=3)
        assert [d.external_id for d in preview] == ["tracks:1", "tracks:2", "tracks:3"]
        assert preview[1].title == "Balls to the Wall by Accept"


def test_it_reports_an_unreachable_server():
    port = free_port()
    dataset = [{"name": "a", "table": "t", "id_columns": ["id"]}]
    for make in (pg_source, my_source):
        source = make("nowhere", dataset, port=port, password="do-not-show-me", connect_timeout_s=3)
        with pytest.raises(SourceError) as caught:
            source.check()
        assert str(caught.value).startswith(f"Cannot reach the database server at 127.0.0.1:{port}: ")
        assert "refused" in str(caught.value).lower()
        assert caught.value.permanent
    for make, port in ((pg_source, 5432), (my_source, 3306)):
        source = make("nowhere", dataset, host="no-such-host.invalid", password="do-not-show-me", connect_timeout_s=3)
        unknown = f"^Cannot reach the database server at no-such-host.invalid:{port}: the host name"
        with pytest.raises(SourceError, match=unknown):
            source.check()


def test_it_reports_a_bad_password_on_mariadb(my_chinook):
    source = build_source(
        "mysql",
        {"host": MY_HOST, "database": my_chinook, "user": MY_USER,
         "datasets": [{"name": "artists", "table": "Artist", "id_columns": ["ArtistId"]}]},
        {"password": "wrong-password-123"},
    )
    with pytest.raises(SourceError) as caught:
        source.check()
    assert str(caught.value).startswith("The database refused the user name or password")
    assert "wrong-password-123" not in str(caught.value)
    # The right password works, and the grant covers the one table.
    right = build_source("mysql", {**source.config.model_dump(exclude={"password"}), "datasets": [
        {"name": "artists", "table": "Artist", "id_columns": ["ArtistId"]}]}, {"password": MY_PASSWORD})
    assert "artists (table Artist): 275 rows" in right.check()


def test_it_reports_an_unknown_postgres_role(pg_chinook):
    # The machine's PostgreSQL trusts 127.0.0.1, so any password passes: test the user name.
    source = pg_source(pg_chinook, [{"name": "a", "table": "artist", "id_columns": ["artist_id"]}],
                       user="nobody_at_all", password="do-not-show-me")
    with pytest.raises(SourceError) as caught:
        source.check()
    assert str(caught.value).startswith("The database refused the user name or password")
    assert "nobody_at_all" in str(caught.value) and "do-not-show-me" not in str(caught.value)


def test_it_words_postgres_sign_in_failures_plainly():
    # 127.0.0.1 trusts every user here, so the server's own wording is replayed.
    source = pg_source("sales", [{"name": "a", "table": "t", "id_columns": ["id"]}],
                       user="app", password="pw-42-secret")
    failures = {
        'connection to server at "db", port 5432 failed: FATAL:  password authentication failed for user "app"':
            "The database refused the user name or password: user app cannot sign in to 127.0.0.1:5432.",
        'connection to server at "db", port 5432 failed: fe_sendauth: no password supplied':
            "The database refused the user name or password",
        'connection to server at "db", port 5432 failed: FATAL:  no pg_hba.conf entry for host "10.0.0.9"':
            "does not accept connections from this machine for user app and database sales",
        "connection to server at \"db\", port 5432 failed: timeout expired":
            "Cannot reach the database server at 127.0.0.1:5432: no answer within 10 s",
        'connection to server at "db", port 5432 failed: FATAL:  sorry, too many clients already pw-42-secret':
            "The database server at 127.0.0.1:5432 is busy: sorry, too many clients already ********",
    }
    for message, expected in failures.items():
        error = source._connect_error(psycopg.OperationalError(message))
        assert expected in str(error), (message, str(error))
        assert "pw-42-secret" not in str(error)
        assert error.permanent is ("busy" not in expected)


def test_it_reports_an_unknown_database():
    dataset = [{"name": "a", "table": "t", "id_columns": ["id"]}]
    with pytest.raises(SourceError, match=r"^Database no_such_db_x does not exist on the server at 127.0.0.1:5432"):
        pg_source("no_such_db_x", dataset).check()
    with pytest.raises(SourceError, match=r"^Database no_such_db_x does not exist on the server at 127.0.0.1:3306"):
        my_source("no_such_db_x", dataset, user=MY_ADMIN, password="").check()


def test_it_reports_a_missing_table(pg_chinook, my_chinook):
    with pytest.raises(SourceError, match=rf"^Table albums does not exist in database {pg_chinook}\.$"):
        pg_source(pg_chinook, [{"name": "a", "table": "albums", "id_columns": ["id"]}]).check()
    with pytest.raises(SourceError, match=rf"^Table Albums does not exist in database {my_chinook}\.$"):
        my_source(my_chinook, [{"name": "a", "table": "Albums", "id_columns": ["id"]}]).check()
    with pytest.raises(SourceError, match="the query uses a table that does not exist"):
        pg_source(pg_chinook, [{"name": "q", "query": "SELECT * FROM nothing_here", "id_columns": ["id"]}]).check()


def test_it_reports_a_missing_select_privilege(pg_chinook, my_chinook):
    pg = pg_source(pg_chinook, [{"name": "a", "table": "album", "id_columns": ["album_id"]}], user=PG_NOREAD_ROLE)
    no_select = rf"^User {PG_NOREAD_ROLE} may not read table album \(no SELECT privilege\)\.$"
    with pytest.raises(SourceError, match=no_select) as caught:
        pg.check()
    assert caught.value.permanent
    my = build_source("mysql", {"host": MY_HOST, "database": my_chinook, "user": MY_USER,
                                "datasets": [{"name": "a", "table": "Album", "id_columns": ["AlbumId"]}]},
                      {"password": MY_PASSWORD})
    no_select = rf"^User {MY_USER} may not read table Album \(no SELECT privilege\)\.$"
    with pytest.raises(SourceError, match=no_select) as caught:
        my.check()
    assert MY_PASSWORD not in str(caught.value)


def test_it_reports_a_missing_template_column(pg_chinook, my_chinook):
    pg = pg_source(pg_chinook, [{"name": "artists", "table": "artist", "id_columns": ["artist_id"],
                                 "title_template": "{artist_name}"}])
    with pytest.raises(SourceError) as caught:
        pg.check()
    assert str(caught.value) == (
        "Dataset artists: the title template uses column artist_name, which table artist does not have. "
        "Its columns: artist_id, name."
    )
    with pytest.raises(SourceError, match="uses column artist_name"):
        list(pg.iter_documents())
    my = my_source(my_chinook, [{"name": "artists", "table": "Artist", "id_columns": ["ArtistId"],
                                 "text_template": "{name}"}])
    hint = r"text template uses column name, which table Artist does not have \(did you mean Name\?"
    with pytest.raises(SourceError, match=hint):
        my.check()


# --- safety ---------------------------------------------------------------------------------------


def _album_count_pg(db):
    return pg_exec(db, "SELECT count(*) FROM album")[0][0]


def _album_count_my(db):
    return my_exec(db, "SELECT COUNT(*) FROM Album")[0][0]


def bypass_sql_policy(source, query: str):
    """`source` with its first dataset's SQL replaced after the policy checked it, as if the
    policy had a hole: what the server itself still refuses (the second layer)."""
    source.config.datasets[0]._runnable = query
    return source


def test_it_refuses_queries_that_write(pg_chinook, my_chinook):
    for make, db in ((pg_source, pg_chinook), (my_source, my_chinook)):
        for query in ("DELETE FROM album", "SELECT 1 AS id; DELETE FROM album", "UPDATE album SET title = 'x'"):
            with pytest.raises(SourceError, match="the query must be"):
                make(db, [{"name": "w", "query": query, "id_columns": ["id"]}])
        with pytest.raises(SourceError, match=r"the query calls scratch_write\(\), which is not on the list"):
            make(db, [{"name": "w", "query": "SELECT scratch_write() AS id", "id_columns": ["id"]}])

    cte = "WITH gone AS (DELETE FROM album RETURNING album_id) SELECT album_id AS id FROM gone"
    with pytest.raises(SourceError, match="the query changes data: a dataset may only read"):
        pg_source(pg_chinook, [{"name": "w", "query": cte, "id_columns": ["id"]}])
    lift = "SELECT set_config('transaction_read_only', 'off', false) AS id"
    with pytest.raises(SourceError, match=r"the query calls set_config\(\)"):
        pg_source(pg_chinook, [{"name": "w", "id_columns": ["id"], "query": lift}])

    # The server's layer, should the policy ever let one through: read-only transactions.
    harmless = [{"name": "w", "query": "SELECT 1 AS id", "id_columns": ["id"]}]
    for query in (cte, "SELECT scratch_write() AS id", lift):
        source = bypass_sql_policy(pg_source(pg_chinook, harmless), query)
        with pytest.raises(SourceError, match="tries to change data") as caught:
            list(source.iter_documents())
        assert caught.value.permanent
    source = bypass_sql_policy(my_source(my_chinook, harmless), "SELECT scratch_write() AS id")
    with pytest.raises(SourceError, match="tries to change data"):
        list(source.iter_documents())

    assert pg_exec(pg_chinook, "SELECT count(*) FROM audit_log")[0][0] == 0
    assert my_exec(my_chinook, "SELECT COUNT(*) FROM audit_log")[0][0] == 0
    assert _album_count_pg(pg_chinook) == _album_count_my(my_chinook) == 347


def test_a_mariadb_account_that_can_read_server_files_is_refused(my_chinook, tmp_path):
    """LOAD_FILE and INTO OUTFILE are not writes to tables: a read-only transaction lets them
    run. The SQL policy refuses them, and an account holding FILE (or SUPER) is refused too."""
    harmless = [{"name": "f", "query": "SELECT 1 AS id", "id_columns": ["id"]}]
    with pytest.raises(SourceError, match=r"^User root holds the FILE and SUPER privilege on 127.0.0.1:3306\."):
        my_source(my_chinook, harmless, user=MY_ADMIN, password="").check()
    # The reader has no FILE privilege: even past the policy, the server reads no file.
    source = bypass_sql_policy(my_source(my_chinook, harmless), "SELECT 1 AS id, LOAD_FILE('/etc/hostname') AS f")
    [item] = source.iter_documents()
    assert item.text == "id: 1"  # LOAD_FILE gave NULL, which a document leaves out


def _stats_reset_at(db):
    return pg_exec(db, "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")[0][0]


def test_pg_stat_reset_is_refused_by_the_policy_and_by_the_server(pg_chinook):
    """The red team ran pg_stat_reset() in the "read-only" session: it is not a write, so a
    read-only transaction lets it through. The SQL policy refuses it; and the connection is
    never a superuser's, so the server refuses it too."""
    before = _stats_reset_at(pg_chinook)
    with pytest.raises(SourceError, match=r"the query calls pg_stat_reset\(\), which is not on the list"):
        pg_source(pg_chinook, [{"name": "s", "query": "SELECT pg_stat_reset() AS id", "id_columns": ["id"]}])
    harmless = [{"name": "s", "query": "SELECT 1 AS id", "id_columns": ["id"]}]
    for query in ("SELECT 1 AS id, pg_stat_reset() AS r", "SELECT 1 AS id, pg_read_file('/etc/passwd') AS r"):
        source = bypass_sql_policy(pg_source(pg_chinook, harmless), query)
        with pytest.raises(SourceError, match="permission denied"):
            list(source.iter_documents())
    # As a superuser the source does not even connect.
    boss = f"scratch_super_{SUFFIX}"
    pg_exec("postgres", sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(boss)))
    try:
        with pytest.raises(SourceError, match=rf"^User {boss} is a superuser on 127.0.0.1:5432\. A connector must"):
            pg_source(pg_chinook, harmless, user=boss).check()
    finally:
        pg_exec("postgres", sql.SQL("DROP ROLE {}").format(sql.Identifier(boss)))
    assert _stats_reset_at(pg_chinook) == before


def test_it_quotes_or_rejects_injection_through_names(pg_chinook, my_chinook):
    evil_table = "artist; DROP TABLE album"
    with pytest.raises(SourceError, match=r"^Table artist; DROP TABLE album does not exist"):
        pg_source(pg_chinook, [{"name": "a", "table": evil_table, "id_columns": ["artist_id"]}]).check()
    evil_column = 'name"; DROP TABLE album; --'
    source = pg_source(pg_chinook, [{"name": "a", "table": "artist", "id_columns": ["artist_id", evil_column]}])
    with pytest.raises(SourceError, match="uses column name\"; DROP TABLE album; --, which table artist does not have"):
        source.check()
    with pytest.raises(SourceError):
        source.list_ids()  # the quoted name reaches the server as one (unknown) column
    with pytest.raises(SourceError):
        list(source.fetch(["a:1|x"]))

    for table in (evil_table, "Artist`; DROP TABLE Album; --", "Artist` `"):
        with pytest.raises(SourceError, match="is not an allowed MySQL name"):
            my_source(my_chinook, [{"name": "a", "table": table, "id_columns": ["ArtistId"]}])
    with pytest.raises(SourceError, match="is not an allowed MySQL name"):
        my_source(my_chinook, [{"name": "a", "table": "Artist", "id_columns": ["ArtistId`) OR 1=1 --"]}])
    with pytest.raises(SourceError, match="is not an allowed MySQL name"):
        my_source(my_chinook, [{"name": "a", "table": "Artist", "id_columns": ["ArtistId"],
                                "updated_at_column": "a`b"}])
    with pytest.raises(SourceError, match="contains control characters"):
        my_source(my_chinook, [{"name": "a", "table": "Artist", "id_columns": ["ArtistId"],
                                "updated_at_column": "x\ny"}])
    assert quote_mysql_identifier("Chinook.Artist", qualified=True) == "`Chinook`.`Artist`"
    with pytest.raises(ValueError):
        quote_mysql_identifier("Artist\n")  # fullmatch: no trailing newline slips through

    # Values never become SQL: ids with quotes are parameters.
    assert list(pg_source(pg_chinook, [{"name": "a", "table": "artist", "id_columns": ["name"]}])
                .fetch(["a:AC/DC' OR '1'='1"])) == []
    assert list(my_source(my_chinook, [{"name": "a", "table": "Artist", "id_columns": ["Name"]}])
                .fetch(["a:AC/DC' OR '1'='1", "a:AC/DC\\' OR 1=1 -- "])) == []
    assert _album_count_pg(pg_chinook) == _album_count_my(my_chinook) == 347


def test_it_rejects_unsafe_templates_and_names():
    base = {"host": "h", "database": "d", "user": "u"}
    unsafe = ("{name.__class__}", "{rows[0]}", "{0}", "{}", "{name!r}", "{name:{width}}", "{name:>999999999}", "{ name")
    for template in unsafe:
        dataset = {"name": "a", "table": "t", "id_columns": ["id"], "title_template": template}
        with pytest.raises(SourceError, match="title_template"):
            build_source("postgres", {**base, "datasets": [dataset]})
    for name in ("a:b", "a|b", "", "with space"):
        with pytest.raises(SourceError, match="datasets.0.name"):
            build_source("postgres", {**base, "datasets": [{"name": name, "table": "t", "id_columns": ["id"]}]})
    with pytest.raises(SourceError, match="dataset names must be unique"):
        build_source("mysql", {**base, "datasets": [{"name": "a", "table": "t", "id_columns": ["id"]}] * 2})
    with pytest.raises(SourceError, match="set exactly one of table or query"):
        build_source("mysql", {**base, "datasets": [{"name": "a", "id_columns": ["id"]}]})
    with pytest.raises(SourceError, match="Extra inputs are not permitted"):
        build_source("mysql", {**base, "sslmode": "require",
                               "datasets": [{"name": "a", "table": "t", "id_columns": ["id"]}]})
    assert render_template("{a} and {b:.2f} {{literal}}", {"a": None, "b": 1.5}) == " and 1.50 {literal}"
    assert to_sql(check_select("SELECT ';' AS x; -- done", "postgres"), "postgres") == "SELECT ';' AS x"


def test_it_never_shows_the_password(pg_chinook, my_chinook):
    secret = "Sup3r-Secret-Passw0rd"
    dataset = [{"name": "a", "table": "no_such_table", "id_columns": ["id"]}]
    sources = [
        pg_source(pg_chinook, dataset, password=secret),
        my_source("no_such_db_y", dataset, password=secret),
        my_source(my_chinook, dataset, password=secret, user=MY_USER),
        pg_source(pg_chinook, dataset, password=secret, port=free_port()),
    ]
    for source in sources:
        assert secret not in repr(source.config) and secret not in str(source.config)
        assert secret not in json.dumps(source.config.model_dump(mode="json"))
        with pytest.raises(SourceError) as caught:
            source.check()
        assert secret not in str(caught.value) and secret not in repr(caught.value)
    with pytest.raises(SourceError) as caught:
        build_source("postgres", {"host": "h", "database": "d", "user": "u", "datasets": []}, {"password": secret})
    assert secret not in str(caught.value)


def test_it_cancels_a_slow_statement_as_a_transient_error(pg_chinook, my_chinook):
    for make, db, query in (
        (pg_source, pg_chinook, "SELECT count(*) AS id FROM generate_series(1, 1000000000) AS n"),
        (my_source, my_chinook, "SELECT COUNT(*) AS id FROM Track a CROSS JOIN Track b CROSS JOIN Track c"),
    ):
        source = make(db, [{"name": "slow", "query": query, "id_columns": ["id"]}], statement_timeout_s=1)
        started = time.monotonic()
        with pytest.raises(SourceError, match="longer than the statement timeout of 1 s") as caught:
            list(source.iter_documents())
        assert caught.value.permanent is False
        assert time.monotonic() - started < 4


# --- connectors.secrets ---------------------------------------------------------------------------


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CONNECTOR_SECRET_KEYS = [old]
    return settings, old, new


def test_it_round_trips_secrets(keys):
    token = encrypt_secrets({"password": "hunter2-ü"})
    assert "hunter2" not in token
    assert decrypt_secrets(token) == {"password": "hunter2-ü"}
    assert decrypt_secrets("") == {} and encrypt_secrets({}) == ""


def test_it_rotates_keys(keys):
    settings, old, new = keys
    token = encrypt_secrets({"password": "pw-1"})
    settings.CONNECTOR_SECRET_KEYS = [new, old]
    assert decrypt_secrets(token) == {"password": "pw-1"}  # the old key still decrypts
    rotated = rotate(token)
    settings.CONNECTOR_SECRET_KEYS = [new]
    assert decrypt_secrets(rotated) == {"password": "pw-1"}  # re-encrypted with the new key
    with pytest.raises(SecretsError):
        decrypt_secrets(token)


def test_it_refuses_a_wrong_key_without_showing_the_secret(keys):
    settings, _old, new = keys
    token = encrypt_secrets({"password": "very-secret-value"})
    settings.CONNECTOR_SECRET_KEYS = [new]
    with pytest.raises(SecretsError) as caught:
        decrypt_secrets(token)
    assert "CONNECTOR_SECRET_KEYS" in str(caught.value)
    assert "very-secret-value" not in str(caught.value) and new not in str(caught.value)
    with pytest.raises(SecretsError):
        rotate(token)
    with pytest.raises(SecretsError):
        decrypt_secrets("not-a-token")


def test_it_derives_a_stable_key_from_secret_key(settings):
    key = derive_key("test-only-secret")
    assert key == derive_key("test-only-secret") != derive_key("another-secret")
    Fernet(key)  # a valid Fernet key
    settings.CONNECTOR_SECRET_KEYS = []
    settings.SECRET_KEY = "test-only-secret"
    token = encrypt_secrets({"password": "x"})
    settings.CONNECTOR_SECRET_KEYS = [key]
    assert decrypt_secrets(token) == {"password": "x"}
    assert parse_keys(f" {key} , {Fernet.generate_key().decode()} ")[0] == key
    with pytest.raises(SecretsError, match="key number 2") as caught:
        parse_keys(f"{key},not-a-key-at-all")
    assert "not-a-key-at-all" not in str(caught.value)
