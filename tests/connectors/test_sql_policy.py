"""Dataset SQL is judged on its syntax tree (connectors.sources.sql_policy): one read-only
SELECT, allowed functions only, no system catalogs. The hostile corpus below is what an
attacker with the admin's form would try; each statement must be refused with a message
that says what to change, and ordinary reporting queries must still pass."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from connectors.sources.base import SourceError
from connectors.sources.registry import build_source
from connectors.sources.sql_policy import SqlRefused, check_select, to_sql

HOSTILE = [
    # files, server functions, the statistics reset of the red team's report
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "calls pg_read_file()"),
    ("postgres", "SELECT 1 AS id, pg_stat_reset() AS r", "calls pg_stat_reset()"),
    ("postgres", "SELECT pg_sleep(30)", "calls pg_sleep()"),
    ("postgres", "SELECT * FROM dblink('host=10.0.0.1 dbname=x', 'SELECT 1') AS t(a int)", "calls dblink()"),
    ("postgres", "SELECT lo_import('/etc/passwd')", "calls lo_import()"),
    ("postgres", "SELECT lo_export(16409, '/tmp/x')", "calls lo_export()"),
    ("postgres", "SELECT set_config('default_transaction_read_only', 'off', false)", "calls set_config()"),
    ("postgres", "SELECT current_setting('data_directory')", "calls current_setting()"),
    ("postgres", "SELECT * FROM pg_ls_dir('/')", "calls pg_ls_dir()"),
    ("postgres", "SELECT query_to_xml('SELECT * FROM pg_authid', true, true, '')", "calls query_to_xml()"),
    ("postgres", "SELECT nextval('invoice_id_seq')", "calls nextval()"),
    ("postgres", "SELECT pg_catalog.pg_read_file('/etc/passwd')", "may not be qualified with a schema"),
    ("postgres", "SELECT \"pg_catalog\".upper('x')", "may not be qualified with a schema"),
    # the product's sessions and password hashes through the catalogs, however spelled
    ("postgres", "SELECT usename, passwd FROM pg_shadow", "system catalog"),
    ("postgres", "SELECT rolpassword FROM pg_catalog.pg_authid", "system catalog"),
    ("postgres", 'SELECT * FROM "pg_catalog"."pg_user"', "system catalog"),
    ("postgres", "SELECT * FROM PG_CATALOG . PG_USER", "system catalog"),
    ("postgres", "SELECT * FROM information_schema.tables", "system catalog"),
    ("postgres", "SELECT session_key AS id FROM django_session UNION SELECT usename FROM pg_user", "system catalog"),
    ("postgres", "SELECT * FROM t WHERE x IN (SELECT oid FROM pg_class)", "system catalog"),
    ("postgres", "SELECT 'pg_authid'::regclass", "object-identifier type"),
    # more than one statement, or not a SELECT
    ("postgres", "SELECT 1; DELETE FROM album", "single statement"),
    ("postgres", "SELECT 1 /* ; */ ; DROP TABLE album", "single statement"),
    ("postgres", "SELECT ';' AS x; -- ;\nDROP TABLE album", "single statement"),
    ("postgres", "SELECT $$;$$ AS x; UPDATE album SET title = 'x'", "single statement"),
    ("postgres", "WITH gone AS (DELETE FROM album RETURNING album_id) SELECT album_id FROM gone", "changes data"),
    ("postgres", "WITH x AS (UPDATE album SET title = 'x' RETURNING 1) SELECT * FROM x", "changes data"),
    ("postgres", "SELECT * INTO album_copy FROM album", "SELECT … INTO"),
    ("postgres", "SELECT * FROM album FOR UPDATE", "locks rows"),
    ("postgres", "SELECT * FROM album FOR SHARE", "locks rows"),
    ("postgres", "COPY album TO '/tmp/album.csv'", "not COPY"),
    ("postgres", "SET statement_timeout = 0", "not SET"),
    ("postgres", "CALL refresh_everything()", "not CALL"),
    ("postgres", "DO $$ BEGIN PERFORM pg_stat_reset(); END $$", "not DO"),
    ("postgres", "LOCK TABLE album", "not LOCK"),
    ("postgres", "GRANT SELECT ON album TO PUBLIC", "not GRANT"),
    ("postgres", "INSERT INTO album VALUES (1, 'x', 1)", "not INSERT"),
    ("postgres", "SELECT * FROM album WHERE title = $1", "variable or parameter"),
    # MySQL / MariaDB
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "calls LOAD_FILE()"),
    ("mysql", "SELECT SLEEP(30)", "calls SLEEP()"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('x'))", "calls BENCHMARK()"),
    ("mysql", "SELECT GET_LOCK('sync', 60)", "calls GET_LOCK()"),
    ("mysql", "SELECT * FROM Album INTO OUTFILE '/tmp/album.txt'", "INTO OUTFILE"),
    ("mysql", "SELECT * FROM Album INTO DUMPFILE '/tmp/album.bin'", "INTO OUTFILE / DUMPFILE"),
    ("mysql", "SELECT Title INTO @stolen FROM Album LIMIT 1", "SELECT … INTO"),
    ("mysql", "SELECT /*!50000 SLEEP(30) */ 1", "executable comment"),
    ("mysql", "SELECT /*M! LOAD_FILE('/etc/passwd') */ 1", "executable comment"),
    ("mysql", "SELECT /*+ SET_VAR(sql_mode='') */ 1", "SET_VAR"),
    ("mysql", "SELECT User, Password FROM mysql.user", "system catalog"),
    ("mysql", "SELECT * FROM `mysql`.`user`", "system catalog"),
    ("mysql", "SELECT * FROM performance_schema.threads", "system catalog"),
    ("mysql", "SELECT * FROM information_schema.USER_PRIVILEGES", "system catalog"),
    ("mysql", "SELECT * FROM sys.session", "system catalog"),
    ("mysql", "SELECT * FROM Album LOCK IN SHARE MODE", "locks rows"),
    ("mysql", "SELECT * FROM Album FOR UPDATE", "locks rows"),
    ("mysql", "SELECT @@global.secure_file_priv", "variable or parameter"),
    ("mysql", "SELECT @n := COUNT(*) FROM Album", "assigns a variable"),
    ("mysql", "SELECT 1; DROP TABLE Album", "single statement"),
    ("mysql", "SELECT 1 # a comment\n; DELETE FROM Album", "single statement"),
    ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE Album", "could not be read"),
    ("mysql", "SHOW GRANTS", "not SHOW"),
    ("mysql", "UPDATE Album SET Title = 'x'", "not UPDATE"),
    ("mysql", "HANDLER Album OPEN", "could not be read"),
]

LEGIT = [
    ("postgres", """SELECT t.track_id, t.name AS track, ar.name AS artist, al.title AS album, g.name AS genre
                    FROM track t JOIN album al ON al.album_id = t.album_id
                    JOIN artist ar ON ar.artist_id = al.artist_id LEFT JOIN genre g ON g.genre_id = t.genre_id"""),
    ("postgres", "WITH x AS (SELECT album_id, count(*) AS n FROM track GROUP BY album_id) SELECT * FROM x WHERE n > 3"),
    ("postgres", """SELECT id, coalesce(title, 'none') || ' ' || date_trunc('day', created)::text AS t, now(),
                    CASE WHEN price > 10 THEN 'high' ELSE 'low' END AS band, extract(year FROM created) AS y,
                    round(avg(price) OVER (PARTITION BY k)::numeric, 2) AS mean, string_agg(tag, ', ') AS tags
                    FROM docs WHERE body ILIKE '%leave%' AND tags @> '{hr}' GROUP BY id ORDER BY id LIMIT 10"""),
    ("postgres", "SELECT ';' AS x; -- the trailing semicolon and comment are fine"),
    ("postgres", "SELECT n AS id FROM generate_series(1, 10) AS n"),
    ("postgres", "SELECT 1 AS id UNION ALL SELECT 2 EXCEPT SELECT 3"),
    ("mysql", """SELECT t.TrackId AS track_id, CONCAT(t.Name, ' by ', ar.Name) AS track, DATE_FORMAT(NOW(), '%Y')
                 FROM Track t JOIN Album al ON al.AlbumId = t.AlbumId JOIN Artist ar ON ar.ArtistId = al.ArtistId"""),
    ("mysql", """SELECT AlbumId AS id, GROUP_CONCAT(Name ORDER BY Name SEPARATOR ', ') AS names,
                 IFNULL(MAX(Composer), '') AS composer, IF(COUNT(*) > 10, 'long', 'short') AS size,
                 DATE(MAX(NOW())) AS today, JSON_UNQUOTE(JSON_EXTRACT('{"a": 1}', '$.a')) AS a
                 FROM Track GROUP BY AlbumId HAVING COUNT(*) > 1"""),
    ("mysql", "SELECT 'it''s' AS x, `Name` FROM Artist WHERE Name LIKE 'A%' LIMIT 5"),
]


def test_the_corpus_is_large_and_covers_both_dialects():
    assert len(HOSTILE) >= 40
    assert {dialect for dialect, _sql, _why in HOSTILE} == {"postgres", "mysql"}


@pytest.mark.parametrize(("dialect", "sql", "why"), HOSTILE, ids=[f"{d}-{i}" for i, (d, _s, _w) in enumerate(HOSTILE)])
def test_hostile_sql_is_refused_with_the_reason(dialect, sql, why):
    # Through the dataset settings an admin saves (what the red team used) ...
    dataset = {"name": "q", "query": sql, "id_columns": ["id"]}
    with pytest.raises(SourceError) as caught:
        build_source(dialect, {"host": "db.example.com", "database": "sales", "user": "reader", "datasets": [dataset]})
    assert "datasets: Value error, dataset q: the query " in str(caught.value)
    assert why in str(caught.value)
    # ... and through the policy's own API, which the SQL tool reuses.
    with pytest.raises(SqlRefused, match=re.escape(why)):
        check_select(sql, dialect)


@pytest.mark.parametrize(("dialect", "sql"), LEGIT)
def test_ordinary_reporting_queries_pass_and_are_sent_as_checked(dialect, sql):
    tree = check_select(sql, dialect)
    runnable = to_sql(tree, dialect)
    # What is sent is the checked tree, written out again: one statement, no comments.
    again = [s for s in sqlglot.parse(runnable, read=dialect) if s is not None]
    assert len(again) == 1 and "--" not in runnable and "/*" not in runnable
    check_select(runnable, dialect)


def test_a_quote_trick_stays_one_string_literal():
    # MySQL reads \' as an escaped quote, and NO_BACKSLASH_ESCAPES does not: the text could be
    # one statement to the check and two to the server. What is sent is written out again
    # with doubled quotes, which both modes read as one string.
    sql = "SELECT 'a\\'; DELETE FROM Album; -- ' AS x"
    runnable = to_sql(check_select(sql, "mysql"), "mysql")
    assert runnable == "SELECT 'a''; DELETE FROM Album; -- ' AS x"
    literal = sqlglot.parse_one(runnable, read="mysql").find(exp.Literal)
    assert literal.this == "a'; DELETE FROM Album; -- "


def test_a_dataset_with_hostile_sql_cannot_be_configured():
    base = {"host": "db.example.com", "database": "sales", "user": "reader"}
    for kind, sql in (("postgres", "SELECT 1 AS id, pg_read_file('/etc/passwd') AS f"),
                      ("mysql", "SELECT 1 AS id, LOAD_FILE('/etc/passwd') AS f")):
        dataset = {"name": "files", "query": sql, "id_columns": ["id"]}
        with pytest.raises(SourceError, match=r"dataset files: the query calls (pg_read_file|LOAD_FILE)\(\)"):
            build_source(kind, {**base, "datasets": [dataset]})


def test_empty_and_unknown_dialects_are_refused():
    with pytest.raises(SqlRefused, match="must not be empty"):
        check_select("  -- nothing\n", "postgres")
    with pytest.raises(ValueError):
        check_select("SELECT 1", "oracle")
