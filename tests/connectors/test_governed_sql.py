"""Governed SQL (connectors/sources/database/governed.py) against the machine's real PostgreSQL and
MariaDB, over Chinook: legitimate queries give what the same SQL gives run directly by the table's
owner; hostile ones are refused; denied columns and other groups' rows never come back."""

from __future__ import annotations

import threading
import time

import pytest

from connectors.sources.database.governed import GovernedRelation, govern
from connectors.sources.database.questions import QuestionFailed, dataset_columns, relations_for, run_governed
from connectors.sources.sql_policy import SqlRefused
from tests.connectors.chinook_sql import direct as _direct, normal as _normal, relations as _relations, run as _run
from tests.connectors.sample_dbs import my_exec, my_source, pg_exec, pg_source

pytestmark = pytest.mark.usefixtures("sample_database_servers")

#: Legitimate analytic queries: PostgreSQL text, MariaDB text. Dataset names are the table names,
#: so the same text run directly over the tables is the reference.
LEGIT = [
    ("SELECT count(*) FROM track",) * 2,
    ("SELECT g.name, count(*) AS n FROM track t JOIN genre g ON g.genre_id = t.genre_id GROUP BY g.name ORDER BY n DESC, g.name",
     "SELECT g.Name, count(*) AS n FROM track t JOIN genre g ON g.GenreId = t.GenreId GROUP BY g.Name ORDER BY n DESC, g.Name"),
    ("SELECT extract(year FROM invoice_date) AS y, round(sum(total), 2) FROM invoice GROUP BY 1 ORDER BY 1",
     "SELECT YEAR(InvoiceDate) AS y, round(sum(Total), 2) FROM invoice GROUP BY 1 ORDER BY 1"),
    ("WITH per_artist AS (SELECT ar.name, count(*) AS albums FROM album al JOIN artist ar ON ar.artist_id = al.artist_id "
     "GROUP BY ar.name) SELECT * FROM per_artist WHERE albums > 5 ORDER BY albums DESC, name",
     "WITH per_artist AS (SELECT ar.Name, count(*) AS albums FROM album al JOIN artist ar ON ar.ArtistId = al.ArtistId "
     "GROUP BY ar.Name) SELECT * FROM per_artist WHERE albums > 5 ORDER BY albums DESC, Name"),
    ("SELECT billing_country, count(*) FROM invoice WHERE total > (SELECT avg(total) FROM invoice) GROUP BY 1 ORDER BY 2 DESC, 1",
     "SELECT BillingCountry, count(*) FROM invoice WHERE Total > (SELECT avg(Total) FROM invoice) GROUP BY 1 ORDER BY 2 DESC, 1"),
    ("SELECT e.first_name, e.last_name, round(sum(i.total), 2) AS billed FROM employee e JOIN customer c "
     "ON c.support_rep_id = e.employee_id JOIN invoice i ON i.customer_id = c.customer_id GROUP BY 1, 2 ORDER BY 3 DESC",
     "SELECT e.FirstName, e.LastName, round(sum(i.Total), 2) AS billed FROM employee e JOIN customer c "
     "ON c.SupportRepId = e.EmployeeId JOIN invoice i ON i.CustomerId = c.CustomerId GROUP BY 1, 2 ORDER BY 3 DESC"),
    ("SELECT name FROM track WHERE milliseconds > 1000000 UNION SELECT name FROM artist WHERE name LIKE 'Z%' ORDER BY 1",
     "SELECT Name FROM track WHERE Milliseconds > 1000000 UNION SELECT Name FROM artist WHERE Name LIKE 'Z%' ORDER BY 1"),
    ("SELECT a.title FROM album a WHERE NOT EXISTS (SELECT 1 FROM track t WHERE t.album_id = a.album_id AND t.unit_price > 0.99) "
     "ORDER BY 1 LIMIT 10",
     "SELECT a.Title FROM album a WHERE NOT EXISTS (SELECT 1 FROM track t WHERE t.AlbumId = a.AlbumId AND t.UnitPrice > 0.99) "
     "ORDER BY 1 LIMIT 10"),
    ("SELECT country, count(*), rank() OVER (ORDER BY count(*) DESC) FROM customer GROUP BY country ORDER BY 3, 1",
     "SELECT Country, count(*), rank() OVER (ORDER BY count(*) DESC) FROM customer GROUP BY Country ORDER BY 3, 1"),
    ("SELECT * FROM genre ORDER BY genre_id", "SELECT * FROM genre ORDER BY GenreId"),
    ("SELECT t.name, il.quantity * il.unit_price AS amount FROM invoice_line il JOIN track t USING (track_id) "
     "WHERE il.invoice_id = 5 ORDER BY 1",
     "SELECT t.Name, il.Quantity * il.UnitPrice AS amount FROM invoice_line il JOIN track t USING (TrackId) "
     "WHERE il.InvoiceId = 5 ORDER BY 1"),
    ("SELECT upper(left(name, 1)) AS initial, count(*) FROM artist GROUP BY 1 HAVING count(*) > 10 ORDER BY 1",
     "SELECT upper(left(Name, 1)) AS initial, count(*) FROM artist GROUP BY 1 HAVING count(*) > 10 ORDER BY 1"),
]


@pytest.mark.parametrize("index", range(len(LEGIT)))
@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_legitimate_query_gives_what_the_owner_gets(index, dialect, pg_chinook, my_chinook):
    sql = LEGIT[index][0 if dialect == "postgres" else 1]
    database = pg_chinook if dialect == "postgres" else my_chinook
    governed = govern(sql, dialect, _relations(dialect), groups=[], row_limit=10_000)
    columns, rows = _run(dialect, database, governed.sql)
    direct_columns, direct_rows = _run(dialect, database, _direct(sql, dialect))
    assert columns == direct_columns
    assert rows and _normal(rows) == _normal(direct_rows)
    if "ORDER BY" in sql:
        assert rows == direct_rows


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_denied_columns_never_come_back_even_through_star(dialect, pg_chinook, my_chinook):
    database = pg_chinook if dialect == "postgres" else my_chinook
    email = "email" if dialect == "postgres" else "Email"
    relations = _relations(dialect, denied={"customer": {email}})
    columns, rows = _run(dialect, database, govern("SELECT * FROM customer", dialect, relations, groups=[], row_limit=100).sql)
    assert email.lower() not in columns and len(rows) == 59
    assert not any("@" in str(value) for row in rows for value in row)
    for sql in (f"SELECT {email} FROM customer", f"SELECT c.{email} FROM customer c"):
        with pytest.raises(Exception, match=r"(?i)column|unknown"):
            _run(dialect, database, govern(sql, dialect, relations, groups=[], row_limit=100).sql)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_rows_of_other_groups_never_come_back(dialect, pg_chinook, my_chinook):
    """doc_acl's group column: 'engineering, sales' / 'hr' / NULL, as indexing reads it."""
    database = pg_chinook if dialect == "postgres" else my_chinook
    relations = {"docs": GovernedRelation(name="docs", table=("doc_acl",), columns=("id", "title", "body", "groups"),
                                          row_groups_column="groups")}

    def titles(groups):
        sql = govern("SELECT title FROM docs ORDER BY id", dialect, relations, groups=groups, row_limit=100).sql
        return [row[0] for row in _run(dialect, database, sql)[1]]

    assert titles(["sales"]) == ["Roadmap"]
    assert titles(["hr", "engineering"]) == ["Roadmap", "Salaries"]
    assert titles([]) == titles(["Sales"]) == titles(["sale"]) == titles(["o'brien\\"]) == []
    counted = govern("SELECT count(*) FROM docs", dialect, relations, groups=["hr"], row_limit=100).sql
    assert _run(dialect, database, counted)[1] == [(1,)]


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_the_row_limit_caps_the_outermost_query(dialect, pg_chinook, my_chinook):
    database = pg_chinook if dialect == "postgres" else my_chinook
    relations = _relations(dialect)
    for sql in ("SELECT * FROM track", "SELECT * FROM track LIMIT 5000",
                "SELECT name FROM track UNION ALL SELECT name FROM artist"):
        governed = govern(sql, dialect, relations, groups=[], row_limit=20)
        assert len(_run(dialect, database, governed.sql)[1]) == 21  # one more: the caller says it was cut
    assert len(_run(dialect, database, govern("SELECT * FROM track LIMIT 3", dialect, relations, groups=[],
                                                row_limit=20).sql)[1]) == 3


HOSTILE = [
    "SELECT * FROM secrets",
    "SELECT * FROM public.track",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_user",
    "SELECT * FROM pg_shadow",
    "SELECT * FROM mysql.user",
    "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) q, secrets",
    "WITH track AS (SELECT 1) SELECT * FROM employee_secret",
    "SELECT * FROM governed_1",
    "SELECT pg_sleep(10)",
    "SELECT * FROM track; DELETE FROM track",
    "DELETE FROM track",
    "WITH d AS (DELETE FROM track RETURNING *) SELECT * FROM d",
    "SELECT * FROM track FOR UPDATE",
    "SELECT * INTO copy FROM track",
    "SELECT * FROM track LIMIT (SELECT 10)",
]


@pytest.mark.parametrize("sql", HOSTILE)
@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_hostile_queries_are_refused_with_what_to_use(sql, dialect):
    with pytest.raises(SqlRefused) as refused:
        govern(sql, dialect, _relations(dialect), groups=["sales"], row_limit=100)
    assert str(refused.value)


# --- running on the connector's own account (questions.py) -----------------------------------------


def _source(dialect, pg_chinook, my_chinook, datasets):
    return pg_source(pg_chinook, datasets) if dialect == "postgres" else my_source(my_chinook, datasets)


def _ask(source, sql, *, groups=(), row_limit=200, timeout_s=10.0, cancelled=None):
    datasets = source.config.datasets
    relations = relations_for(datasets, dataset_columns(source, datasets, timeout_s=timeout_s))
    governed = govern(sql, source.sql_dialect, relations, groups=groups, row_limit=row_limit)
    return run_governed(source, governed, timeout_s=timeout_s, cancelled=cancelled)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_question_runs_on_the_connectors_account_with_denied_columns_left_out(dialect, pg_chinook, my_chinook):
    email = "email" if dialect == "postgres" else "Email"
    datasets = [
        {"name": "customers", "table": "customer" if dialect == "postgres" else "Customer",
         "id_columns": ["customer_id" if dialect == "postgres" else "CustomerId"], "denied_columns": [email, "phone" if dialect == "postgres" else "Phone"]},
        {"name": "docs", "table": "doc_acl", "id_columns": ["id"], "acl": "column", "acl_column": "groups"},
    ]
    source = _source(dialect, pg_chinook, my_chinook, datasets)
    result = _ask(source, "SELECT * FROM customers ORDER BY 1", row_limit=50)
    assert len(result.rows) == 50 and result.truncated
    assert email not in result.columns and not any("@" in str(v) for row in result.rows for v in row)
    assert result.sql.startswith("WITH governed_1 AS") and result.elapsed_ms >= 0
    counted = _ask(source, "SELECT count(*) FROM docs", groups=["engineering"])
    assert counted.rows == [(1,)] and not counted.truncated
    with pytest.raises(QuestionFailed, match=r"(?i)column"):
        _ask(source, f"SELECT {email} FROM customers")


SLOW = "SELECT count(*) FROM t1 a, t1 b, t1 c"


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_slow_question_is_stopped_by_its_timeout(dialect, pg_chinook, my_chinook):
    source = _source(dialect, pg_chinook, my_chinook, [
        {"name": "t1", "table": "track" if dialect == "postgres" else "Track",
         "id_columns": ["track_id" if dialect == "postgres" else "TrackId"]}])
    with pytest.raises(QuestionFailed) as failed:
        _ask(source, SLOW, timeout_s=0.5)
    assert failed.value.timed_out


def _running(dialect, database) -> bool:
    if dialect == "postgres":
        rows = pg_exec("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                       "AND query LIKE 'FETCH %%question_%%'", (database,))
    else:
        rows = my_exec(None, "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s "
                       "AND INFO LIKE 'WITH governed_1%%'", (database,))
    return rows[0][0] > 0


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_stop_cancels_the_statement_on_the_server(dialect, pg_chinook, my_chinook):
    database = pg_chinook if dialect == "postgres" else my_chinook
    source = _source(dialect, pg_chinook, my_chinook, [
        {"name": "t1", "table": "track" if dialect == "postgres" else "Track",
         "id_columns": ["track_id" if dialect == "postgres" else "TrackId"]}])
    stop = threading.Event()
    outcome = {}

    def ask():
        try:
            _ask(source, SLOW, timeout_s=120, cancelled=stop)
        except QuestionFailed as exc:
            outcome["failed"] = exc

    worker = threading.Thread(target=ask)
    worker.start()
    deadline = time.monotonic() + 60
    while not _running(dialect, database):
        assert time.monotonic() < deadline, "the statement never started"
        time.sleep(0.05)
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive(), "Stop did not end the statement"
    assert "failed" in outcome
    assert not _running(dialect, database)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_huge_result_is_refused_before_it_is_all_read(dialect, pg_chinook, my_chinook):
    """repeat() of a column 10,000 times on every row: each row is big, the result would be huge."""
    name = "name" if dialect == "postgres" else "Name"
    source = _source(dialect, pg_chinook, my_chinook, [
        {"name": "t1", "table": "track" if dialect == "postgres" else "Track",
         "id_columns": ["track_id" if dialect == "postgres" else "TrackId"]}])
    datasets = source.config.datasets
    relations = relations_for(datasets, dataset_columns(source, datasets, timeout_s=10))
    governed = govern(f"SELECT repeat({name}, 10000) FROM t1", source.sql_dialect, relations, groups=[], row_limit=200)
    with pytest.raises(QuestionFailed, match="larger than 2 MB"):
        run_governed(source, governed, timeout_s=30, max_bytes=2_000_000)
    fine = run_governed(source, govern(f"SELECT {name} FROM t1", source.sql_dialect, relations, groups=[],
                                       row_limit=200), timeout_s=30, max_bytes=2_000_000)
    assert len(fine.rows) == 200 and fine.truncated
