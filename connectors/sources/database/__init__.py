"""Company databases (PostgreSQL, MySQL / MariaDB): rows of tables, views or SELECTs as documents.

A connector holds connection settings and one or more *datasets*. A dataset is a table
(or view) or a single read-only SELECT; each row becomes one document whose title and
text come from templates over the row's columns (or "name: value" lines of the chosen text
columns, or of every column), with id columns for identity, an optional updated-at column for incremental
syncs, metadata columns kept as filterable metadata, and an ACL (the connector's, public,
fixed groups, or a column holding group names). Denied columns (PII) never reach the
assistant: left out of the documents' text and of what SQL questions may query.

Safety, in layers:
- where it connects (connectors.sources.db_guard): a host name or IP over TCP, never a
  socket; no loopback/private/link-local address unless the operator allow-listed the host
  (CONNECTOR_ALLOWED_DB_HOSTS); never the product's own database; the connection goes to
  the checked address (PostgreSQL `hostaddr`, MySQL the IP itself), so DNS cannot change it
  between check and connect; checked on save, on test and at every connection;
- PostgreSQL: a superuser account is refused (it ignores privileges, and pg_stat_reset()
  or pg_read_file() are not writes a read-only transaction would stop);
- every session is read-only (PostgreSQL: `default_transaction_read_only` and every
  transaction `BEGIN READ ONLY`; MySQL: `SET SESSION TRANSACTION READ ONLY` and
  `START TRANSACTION READ ONLY`) and has a statement timeout; every read has a row limit;
- identifiers are quoted by psycopg (`sql.Identifier`) or, for MySQL, by
  `quote_mysql_identifier`, which also allows only plain names; values always travel
  as parameters, never inside the SQL text;
- a query dataset must be one read-only SELECT judged on its syntax tree with a function
  and relation allow-list (connectors.sources.sql_policy); what is sent is that checked
  tree written out again (without comments), as a subquery through protocols that refuse several statements (psycopg's
  extended protocol, PyMySQL without MULTI_STATEMENTS);
- still, the real guard is the database account: give the connector a user that may
  only SELECT what it should index.

Reading: PostgreSQL streams each dataset through a named (server-side) cursor inside one
read-only transaction, PG_ITERSIZE rows per FETCH. MySQL reads pages of MYSQL_PAGE_SIZE
rows by keyset pagination, each page streamed (SSCursor) in its own read-only
transaction: there a statement's timeout covers the whole time its rows stream, which a
slow consumer (the indexer) would exceed. Rows come ordered by the updated-at column
(when set) and the id columns; rows whose id columns hold NULL are skipped.

External ids: f"{dataset}:{id1}|{id2}" with `%`, `|` and `:` percent-escaped in values.
Checkpoint: {"cursors": {dataset: last updated-at value (ISO text or number)},
"datasets": {dataset: fingerprint of its definition}}; a changed definition drops its
cursor, so the next sync reads that dataset in full.
"""


from connectors.sources.database.config import DatabaseConfig, Dataset
from connectors.sources.database.mysql import MySQLSource
from connectors.sources.database.postgres import PostgresSource
from connectors.sources.database.sql import quote_mysql_identifier, template_fields
from connectors.sources.database.values import render_template

__all__ = [
    "DatabaseConfig",
    "Dataset",
    "MySQLSource",
    "PostgresSource",
    "quote_mysql_identifier",
    "render_template",
    "template_fields",
]
