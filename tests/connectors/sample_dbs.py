"""The machine's sample database servers as sources: Chinook (both dialects) and Northwind
(PostgreSQL) loaded into scratch databases with unique names, with a few scratch tables and roles,
dropped at the end of the test session. tests/conftest.py registers the fixtures once for every
package's tests (a module that imported them would make a second session copy, and a second role)."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path

import psycopg
import pymysql
import pytest
from psycopg import sql
from pymysql.constants import CLIENT

from connectors.sources.database import MySQLSource, PostgresSource
from connectors.sources.registry import build_source

SAMPLES = Path("/work/shared/data/sample-dbs")
PG_HOST, PG_PORT, PG_ADMIN = "127.0.0.1", 5432, "postgres"
MY_HOST, MY_PORT, MY_ADMIN = "127.0.0.1", 3306, "root"
SUFFIX = uuid.uuid4().hex[:10]
MY_USER = f"scratch_ro_{SUFFIX}"
MY_PASSWORD = f"Pw-{uuid.uuid4().hex}"
PG_NOREAD_ROLE = f"scratch_noread_{SUFFIX}"
#: Sources sign in as this role: it may read every table, and is no superuser (those are refused).
PG_READER = f"scratch_reader_{SUFFIX}"
#: The same on MariaDB: SELECT (and EXECUTE) on the scratch database, no FILE or SUPER (refused).
MY_READER, MY_READER_PASSWORD = f"scratch_reader_{SUFFIX}", f"Pw-{uuid.uuid4().hex}"


# --- servers and scratch databases ----------------------------------------------------------------


def _strip_script(text: str, patterns: list[str]) -> str:
    pattern = re.compile(r"^\s*(?:" + "|".join(patterns) + r")\b.*$", re.IGNORECASE | re.MULTILINE)
    return pattern.sub("", text)


def pg_connect(dbname: str = "postgres", **kwargs) -> psycopg.Connection:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_ADMIN, dbname=dbname, autocommit=True, **kwargs)


def pg_exec(dbname: str, statement, params=None) -> list[tuple]:
    with pg_connect(dbname) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def my_connect(dbname: str | None = None, **kwargs) -> pymysql.Connection:
    return pymysql.connect(
        host=MY_HOST, port=MY_PORT, user=MY_ADMIN, password="", database=dbname, charset="utf8mb4", autocommit=True,
        **kwargs,
    )


def my_exec(dbname: str, statement: str, params=None) -> list[tuple]:
    conn = my_connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())
    finally:
        conn.close()


def _pg_create(name: str, script: Path) -> None:
    pg_exec("postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    text = _strip_script(script.read_text(encoding="utf-8"), [r"DROP\s+DATABASE", r"CREATE\s+DATABASE", r"\\c"])
    with pg_connect(name) as conn:
        conn.execute(text)  # no parameters: the simple protocol runs the whole script


def _pg_drop(name: str) -> None:
    pg_exec("postgres", sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_reader():
    pg_exec("postgres", sql.SQL("CREATE ROLE {} LOGIN IN ROLE pg_read_all_data").format(sql.Identifier(PG_READER)))
    try:
        yield PG_READER
    finally:
        pg_exec("postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(PG_READER)))


@pytest.fixture(scope="session")
def pg_chinook(pg_reader):
    name = f"scratch_chinook_{SUFFIX}"
    try:
        _pg_create(name, SAMPLES / "chinook" / "Chinook_PostgreSql.sql")
        pg_exec(name, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(PG_NOREAD_ROLE)))
        pg_exec(
            name,
            """
            CREATE TABLE doc_acl (id int PRIMARY KEY, title text, body text, groups text, group_list text[]);
            INSERT INTO doc_acl VALUES
              (1, 'Roadmap', 'Next year', 'engineering, sales', '{engineering,sales}'),
              (2, 'Salaries', 'Confidential', 'hr', '{hr}'),
              (3, 'Nobody', 'Hidden', NULL, NULL);
            CREATE TABLE audit_log (n int);
            CREATE FUNCTION scratch_write() RETURNS int LANGUAGE plpgsql AS
              $$ BEGIN INSERT INTO audit_log VALUES (1); RETURN 1; END $$;
            """,
        )
        yield name
    finally:
        _pg_drop(name)
        pg_exec("postgres", sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(PG_NOREAD_ROLE)))


@pytest.fixture(scope="session")
def pg_northwind(pg_reader):
    name = f"scratch_northwind_{SUFFIX}"
    try:
        _pg_create(name, SAMPLES / "northwind" / "northwind.sql")
        yield name
    finally:
        _pg_drop(name)


@pytest.fixture(scope="session")
def my_chinook():
    name = f"scratch_chinook_{SUFFIX}"
    script = _strip_script(
        (SAMPLES / "chinook" / "Chinook_MySql.sql").read_text(encoding="utf-8"),
        [r"DROP\s+DATABASE", r"CREATE\s+DATABASE", r"USE"],
    )
    try:
        my_exec(None, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        conn = my_connect(name, client_flag=CLIENT.MULTI_STATEMENTS)
        try:
            with conn.cursor() as cursor:
                # Four track names hold a literal backslash, which MySQL would read as an escape.
                cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
                cursor.execute(script)
                while cursor.nextset():
                    pass
        finally:
            conn.close()
        my_exec(
            name,
            """CREATE TABLE doc_acl (id INT PRIMARY KEY, title TEXT, body TEXT, `groups` TEXT, group_json JSON)""",
        )
        my_exec(
            name,
            """INSERT INTO doc_acl VALUES
              (1, 'Roadmap', 'Next year', 'engineering, sales', '["engineering", "sales"]'),
              (2, 'Salaries', 'Confidential', 'hr', '["hr"]'),
              (3, 'Nobody', 'Hidden', NULL, NULL)""",
        )
        my_exec(name, "CREATE TABLE audit_log (n INT)")
        my_exec(
            name,
            "CREATE FUNCTION scratch_write() RETURNS INT MODIFIES SQL DATA "
            "BEGIN INSERT INTO audit_log VALUES (1); RETURN 1; END",
        )
        my_exec(None, "CREATE USER %s@'%%' IDENTIFIED BY %s", (MY_USER, MY_PASSWORD))
        my_exec(None, f"GRANT SELECT ON `{name}`.`Artist` TO %s@'%%'", (MY_USER,))
        my_exec(None, "CREATE USER %s@'%%' IDENTIFIED BY %s", (MY_READER, MY_READER_PASSWORD))
        my_exec(None, f"GRANT SELECT, EXECUTE ON `{name}`.* TO %s@'%%'", (MY_READER,))
        yield name
    finally:
        my_exec(None, f"DROP DATABASE IF EXISTS `{name}`")
        my_exec(None, "DROP USER IF EXISTS %s@'%%'", (MY_USER,))
        my_exec(None, "DROP USER IF EXISTS %s@'%%'", (MY_READER,))


def pg_source(dbname: str, datasets: list[dict], *, password: str = "", **settings) -> PostgresSource:
    config = {"host": PG_HOST, "port": PG_PORT, "database": dbname, "user": PG_READER, "datasets": datasets, **settings}
    return build_source("postgres", config, {"password": password})


def my_source(dbname: str, datasets: list[dict], *, password: str = MY_READER_PASSWORD, **settings) -> MySQLSource:
    config = {"host": MY_HOST, "port": MY_PORT, "database": dbname, "user": MY_READER, "datasets": datasets, **settings}
    return build_source("mysql", config, {"password": password})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: The sample database servers tests read as sources (the machine's PostgreSQL and MariaDB).
SAMPLE_SERVERS = {"PostgreSQL": ("127.0.0.1", 5432), "MariaDB": ("127.0.0.1", 3306)}


@pytest.fixture(scope="session")
def sample_database_servers():
    """Skip, saying why, where the sample servers are missing (a bare machine runs the suite
    against the embedded PostgreSQL, which listens on a socket only, and has no MariaDB)."""
    missing = []
    for name, address in SAMPLE_SERVERS.items():
        try:
            socket.create_connection(address, timeout=2).close()
        except OSError:
            missing.append(f"{name} on {address[0]}:{address[1]}")
    if missing:
        pytest.skip(f"needs the sample database servers as sources; missing: {', '.join(missing)}")

