"""Governed SQL: a query written by the model (or anyone) rewritten so that it can only read what
one reader may see, whatever it says.

    relations = {"tracks": GovernedRelation(name="tracks", table=("public", "track"),
                                            columns=("track_id", "name", "unit_price"))}
    governed = govern(sql, "postgres", relations, groups=("sales",), row_limit=200)
    governed.sql      # what is sent to the server

The query must first pass sql_policy.check_select (one read-only SELECT, allowed functions, no
catalogs). Then every relation it reads is resolved by scope (sqlglot's, after the dialect's
identifier folding): a name defined by the query's own WITH stays; any other name must be one of
`relations` (the datasets the reader may query), unqualified — a schema-qualified name, or a name
that is not a dataset, is refused with the list of names that may be used. Each dataset is then
read through a CTE of the governed form

    governed_N AS (SELECT <allowed columns> FROM <table or the dataset's query> [WHERE <row ACL>])

and the query's reference is pointed at that CTE under its old name or alias, so `tracks.name`
keeps working and `SELECT *` sees only allowed columns. The row ACL (a per-row group column, read
as indexing reads it: an array, a JSON array or comma-separated text) keeps the rows whose groups
meet the reader's. The outermost LIMIT is capped at `row_limit` + 1 (the extra row tells the caller
the result was cut). Plain Python, no Django.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import traverse_scope

from connectors.sources.sql_policy import Dialect, SqlRefused, check_select, to_sql

#: The prefix of the CTEs the rewrite adds; a query may not use names that start with it.
PREFIX = "governed_"


@dataclass(frozen=True)
class GovernedRelation:
    """One dataset as the reader may query it."""

    name: str  # what the query writes: the dataset's name
    columns: tuple[str, ...]  # the columns it exposes (denied columns already left out)
    table: tuple[str, ...] = ()  # a table dataset: (table,) or (schema, table)
    query: str | None = None  # a query dataset: its checked SELECT, as sent (sql_policy.to_sql)
    #: The per-row group column, when the dataset's ACL is by row; None: every row is visible.
    row_groups_column: str | None = None

    def __post_init__(self):
        if bool(self.table) == (self.query is not None):
            raise ValueError(f"relation {self.name}: give exactly one of table or query")
        if not self.columns:
            raise ValueError(f"relation {self.name}: no column may be read")


@dataclass(frozen=True)
class GovernedQuery:
    sql: str  # the rewritten query, as sent
    relations: tuple[str, ...]  # the datasets it reads, by name
    row_limit: int  # the rows the caller keeps; the query may return one more (then it was cut)


def govern(
    sql: str, dialect: Dialect, relations: Mapping[str, GovernedRelation], *, groups: Sequence[str], row_limit: int
) -> GovernedQuery:
    """`sql` rewritten to read only `relations`, as a reader in `groups`; SqlRefused says why not."""
    tree = check_select(sql, dialect)
    tree = normalize_identifiers(tree, dialect=dialect)
    _refuse_reserved_names(tree)
    by_name = _names(relations)
    used: dict[str, str] = {}  # dataset name -> its CTE name
    for table in _real_tables(tree):
        relation = _relation_for(table, by_name)
        cte_name = used.setdefault(relation.name, f"{PREFIX}{len(used) + 1}")
        alias = table.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.name, quoted=True))
        table.replace(exp.Table(this=exp.to_identifier(cte_name), alias=alias))
    ctes = [
        exp.CTE(this=_governed_select(by_name[name.lower()], dialect, groups), alias=exp.TableAlias(this=exp.to_identifier(cte)))
        for name, cte in used.items()
    ]
    _prepend_ctes(tree, ctes)
    _cap_limit(tree, row_limit + 1)
    # The tree is ours (parsed above): the generator may skip its defensive copy (a fifth of the time).
    return GovernedQuery(sql=to_sql(tree, dialect, copy=False), relations=tuple(used), row_limit=row_limit)


def allowed_names(relations: Mapping[str, GovernedRelation]) -> str:
    return ", ".join(sorted(relations)) or "(none)"


def _names(relations: Mapping[str, GovernedRelation]) -> dict[str, GovernedRelation]:
    by_name: dict[str, GovernedRelation] = {}
    for relation in relations.values():
        key = relation.name.lower()
        if key in by_name:
            raise ValueError(f"two datasets are named {relation.name} when case is ignored; rename one")
        by_name[key] = relation
    return by_name


def _refuse_reserved_names(tree: exp.Expression) -> None:
    for identifier in tree.find_all(exp.Identifier):
        if str(identifier.this).lower().startswith(PREFIX):
            raise SqlRefused(f"uses the name {identifier.this}: names starting with {PREFIX} are reserved; rename it")


def _real_tables(tree: exp.Expression) -> list[exp.Table]:
    """The relations the query reads from the database (not its own CTEs, not table functions)."""
    tables = []
    for scope in traverse_scope(tree):
        for table in scope.tables:
            if isinstance(table.this, exp.Func):  # generate_series(…), unnest(…): checked as functions
                continue
            if not table.args.get("db") and not table.args.get("catalog") and table.name in scope.cte_sources:
                continue
            tables.append(table)
    return tables


def _relation_for(table: exp.Table, by_name: dict[str, GovernedRelation]) -> GovernedRelation:
    names = ", ".join(sorted(r.name for r in by_name.values())) or "(none)"
    if table.args.get("db") or table.args.get("catalog"):
        raise SqlRefused(
            f"reads {table.sql()}: a name may not be qualified with a schema or database; "
            f"use one of the datasets: {names}"
        )
    relation = by_name.get(table.name.lower())
    if relation is None:
        raise SqlRefused(f"reads {table.name}, which is not a dataset you may query; use one of: {names}")
    return relation


def _governed_select(relation: GovernedRelation, dialect: Dialect, groups: Sequence[str]) -> exp.Select:
    if relation.table:
        source: exp.Expression = exp.Table(
            this=exp.to_identifier(relation.table[-1], quoted=True),
            db=exp.to_identifier(relation.table[0], quoted=True) if len(relation.table) == 2 else None,
        )
    else:
        inner = sqlglot.parse_one(relation.query, read=dialect)
        source = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("dataset")))
    select = exp.select(*(exp.column(c, quoted=True) for c in relation.columns)).from_(source)
    if relation.row_groups_column:
        select = select.where(_row_acl(relation.row_groups_column, dialect, groups))
    return select


def _row_acl(column: str, dialect: Dialect, groups: Sequence[str]) -> exp.Expression:
    """True for rows whose group column names one of `groups` (never for a reader with none)."""
    names = sorted({g for g in groups if g})
    if not names:
        return exp.false()
    quoted = exp.column(column, quoted=True).sql(dialect=dialect)
    literals = ", ".join(exp.Literal.string(g).sql(dialect=dialect) for g in names)
    if dialect == "postgres":
        text = (
            f"EXISTS (SELECT 1 FROM unnest(string_to_array(translate(CAST({quoted} AS TEXT), '[]{{}}\"', ''), ',')) "
            f"AS acl_group(name) WHERE btrim(acl_group.name) IN ({literals}))"
        )
    else:
        # Separators normalised to bare commas, then each group looked for as ",name," (BINARY: group
        # names are case-sensitive, as they are in the index's ACL).
        listed = (
            f"CONCAT(',', REGEXP_REPLACE(TRIM(REPLACE(REPLACE(REPLACE(CAST({quoted} AS CHAR), '[', ''), ']', ''), "
            f"'\"', '')), '[[:space:]]*,[[:space:]]*', ','), ',')"
        )
        text = " OR ".join(
            f"LOCATE(CAST(CONCAT(',', {exp.Literal.string(g).sql(dialect=dialect)}, ',') AS BINARY), "
            f"CAST({listed} AS BINARY)) > 0"
            for g in names
        )
        text = f"({text})"
    return sqlglot.parse_one(text, read=dialect)


def _prepend_ctes(tree: exp.Expression, ctes: list[exp.CTE]) -> None:
    if not ctes:
        return
    existing = tree.args.get("with_")
    if existing is None:
        tree.set("with_", exp.With(expressions=ctes))
    else:
        existing.set("expressions", [*ctes, *existing.expressions])


_DIGITS = re.compile(r"^\d+$")


def _cap_limit(tree: exp.Expression, cap: int) -> None:
    """The outermost LIMIT made at most `cap` (a LIMIT the query sets lower is kept)."""
    limit = tree.args.get("limit")
    if isinstance(limit, exp.Limit):
        value = limit.expression
        if isinstance(value, exp.Literal) and _DIGITS.match(value.name) and int(value.name) <= cap:
            return
        if not (isinstance(value, exp.Literal) and _DIGITS.match(value.name)):
            raise SqlRefused("has a LIMIT that is not a plain number: write LIMIT 100, say")
        limit.set("expression", exp.Literal.number(cap))
        return
    if isinstance(tree.args.get("fetch"), exp.Fetch):
        raise SqlRefused("uses FETCH FIRST: write LIMIT instead")
    tree.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
