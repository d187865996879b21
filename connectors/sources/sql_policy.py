"""Which SQL an admin (or, later, the model) may run against a company database: one read-only
SELECT, judged on its syntax tree (sqlglot, in the source's dialect), never by scanning text.

    tree = check_select(sql, "postgres")        # or "mysql"; raises SqlRefused(reason)
    runnable = to_sql(tree, "postgres")         # what is sent: the checked tree, comments dropped

The policy, in order:
- the text parses as exactly one statement of the dialect (a second statement, even after a
  comment, is refused; MySQL's executable comments /*! … */ and optimizer hints /*+ … */ are
  refused, since MySQL runs what sqlglot reads as a comment);
- that statement is a SELECT (or UNION/INTERSECT/EXCEPT of SELECTs, WITH … SELECT), and no
  node anywhere in it writes, locks, stores or changes the session: INSERT/UPDATE/DELETE/MERGE
  (also inside a CTE), DDL, COPY, SET, CALL, DO, LOCK, GRANT, SELECT INTO, FOR UPDATE/SHARE,
  INTO OUTFILE/DUMPFILE, variable assignment, session/system variables;
- every function is on an allow-list (aggregates, string, date, math, conditional, casts,
  JSON reading); anything else — pg_read_file, pg_stat_reset, pg_sleep, dblink, lo_*,
  set_config, current_setting, SLEEP, BENCHMARK, LOAD_FILE, GET_LOCK … — is refused, and so is
  a schema-qualified function (pg_catalog.upper) whose resolution the allow-list cannot see;
- no relation of a system catalog: pg_catalog, information_schema, pg_toast, mysql,
  performance_schema, sys, or any pg_* relation (they sit on PostgreSQL's search path).

This is one layer: the sources also run every statement in a read-only transaction with a
timeout, on a connection that is not a superuser's (see connectors.sources.database).
Plain Python, no Django: the SQL tool reuses it.
"""

from __future__ import annotations

from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

Dialect = Literal["postgres", "mysql"]
DIALECTS: dict[str, str] = {"postgres": "PostgreSQL", "mysql": "MySQL / MariaDB"}

#: Schemas (MySQL: databases) whose tables describe the server, its users and its secrets.
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "mysql", "performance_schema", "sys"})

#: Function node classes of sqlglot that only compute a value from their arguments.
ALLOWED_FUNCTIONS = frozenset({
    # operators sqlglot models as functions
    "And", "Or", "Xor", "Exists", "ArrayContainedBy", "ArrayContainsAll", "ArrayPosition", "RegexpFullMatch",
    "JSONBContainsAllTopKeys", "JSONBContainsAnyTopKeys", "JSONBContainsTopKey", "JSONBPathExists", "Corr",
    # aggregates
    "Count", "Sum", "Avg", "Min", "Max", "ArrayAgg", "GroupConcat", "Stddev", "StddevPop", "StddevSamp",
    "Variance", "VariancePop", "LogicalAnd", "LogicalOr", "Median", "PercentileCont", "PercentileDisc",
    "CountIf", "ApproxDistinct", "AnyValue", "First", "Last",
    # window helpers
    "RowNumber", "Rank", "DenseRank", "Lag", "Lead", "FirstValue", "LastValue", "NthValue", "Ntile",
    "PercentRank", "CumeDist",
    # strings
    "Upper", "Lower", "Length", "Substring", "Trim", "Concat", "ConcatWs", "Initcap", "StrPosition",
    "SplitPart", "Reverse", "MD5", "Ascii", "Chr", "Left", "Right", "Pad", "Repeat", "RegexpReplace",
    "RegexpExtract", "RegexpLike", "RegexpILike", "Replace", "Translate", "ArrayToString", "ArrayJoin",
    "Format", "ToChar", "ToNumber", "Lpad", "Rpad", "Space", "Unicode", "StartsWith", "Contains",
    "SubstringIndex", "Collate",
    # dates and times
    "CurrentDate", "CurrentTimestamp", "CurrentTime", "CurrentDatetime", "Localtimestamp", "Localtime",
    "Extract", "DateTrunc", "TimestampTrunc", "DatetimeTrunc", "TimeTrunc", "DateAdd", "DateSub",
    "DateDiff", "DatetimeAdd", "DatetimeSub", "DatetimeDiff", "TimestampAdd", "TimestampSub",
    "TimestampDiff", "TsOrDsAdd", "TsOrDsDiff", "TsOrDsToDate", "TsOrDsToTimestamp", "DateStrToDate",
    "StrToDate", "StrToTime", "TimeToStr", "UnixToTime", "TimeStrToTime", "Date", "Timestamp",
    "Year", "Quarter", "Month", "Week", "WeekOfYear", "Day", "DayOfMonth", "DayOfWeek", "DayOfWeekIso",
    "DayOfYear", "Hour", "Minute", "Second", "LastDay", "MakeInterval", "Interval", "DateFromParts",
    "MonthsBetween", "AddMonths", "DateFormat",
    # maths
    "Abs", "Round", "Floor", "Ceil", "Mod", "Pow", "Sqrt", "Cbrt", "Ln", "Log", "Exp", "Sign",
    "Greatest", "Least", "Trunc", "Pi", "Degrees", "Radians", "Sin", "Cos", "Tan", "Asin", "Acos",
    "Atan", "Atan2", "SafeDivide",
    # conditionals and casts
    "Case", "If", "Coalesce", "Nullif", "Cast", "TryCast", "Convert",
    # reading JSON values and arrays
    "JSONExtract", "JSONExtractScalar", "JSONBExtract", "JSONBExtractScalar", "JSONBContains",
    "JSONArrayContains", "JSONFormat", "ParseJSON", "Array", "ArraySize", "ArrayContains",
    "ArrayOverlaps", "Explode", "Unnest", "ToArray", "Struct", "GenerateSeries", "ExplodingGenerateSeries",
    # named below too, but sqlglot parses them into these classes: without them monthname(),
    # json_agg(), rand() … were refused although the named list allows them
    "ArrayAppend", "ArrayConcat", "ArrayRemove", "BitwiseAndAgg", "BitwiseOrAgg", "BitLength", "Dayname", "Monthname",
    "Elt", "Hex", "Unhex", "JSONArrayAgg", "JSONKeys", "JSONObject", "JSONArray", "JSONObjectAgg", "JSONBObjectAgg",
    "JSONType", "JustifyDays", "TimestampFromParts", "Rand", "RegexpInstr", "RegexpSubstr", "Soundex",
    "StringToArray", "UtcDate", "UtcTimestamp", "WidthBucket",
})

#: Functions sqlglot does not model (exp.Anonymous), by lower-case name.
ALLOWED_NAMED_FUNCTIONS = frozenset({
    "now", "age", "date_part", "make_date", "make_timestamp", "to_timestamp", "to_date", "justify_days",
    "date_format", "unix_timestamp", "from_unixtime", "dayname", "monthname", "weekday", "yearweek",
    "curdate", "curtime", "sysdate", "utc_timestamp", "utc_date", "period_diff", "time_format",
    "makedate", "timediff", "sec_to_time", "time_to_sec", "isfinite",
    "octet_length", "bit_length", "char_length", "strpos", "instr", "locate", "btrim", "ltrim", "rtrim",
    "quote_ident", "quote_literal", "quote_nullable", "regexp_split_to_array", "regexp_matches",
    "regexp_substr", "regexp_instr", "string_to_array", "array_length", "cardinality", "array_position",
    "array_remove", "array_append", "array_cat", "field", "elt", "insert", "ucase", "lcase", "mid",
    "soundex", "hex", "unhex", "to_hex", "bin", "oct", "conv", "format_number", "char",
    "log10", "log2", "ceiling", "power", "div", "truncate", "width_bucket", "random", "rand",
    "ifnull", "isnull", "nvl", "nullif", "every", "bool_and", "bool_or", "bit_and", "bit_or",
    "json_unquote", "json_value", "json_contains", "json_length", "json_keys", "json_type",
    "json_array_length", "jsonb_array_length", "json_extract_path_text", "jsonb_extract_path_text",
    "json_extract_path", "jsonb_extract_path", "json_build_object", "jsonb_build_object",
    "json_build_array", "jsonb_build_array", "json_object", "json_array", "json_agg", "jsonb_agg",
    "json_object_agg", "jsonb_object_agg", "to_json", "to_jsonb", "row_to_json", "json_typeof",
    "jsonb_typeof", "json_array_elements_text", "jsonb_array_elements_text",
    "string_agg", "listagg", "generate_series", "unnest",
})

#: Nodes that are not a plain read, with what to write instead.
_FORBIDDEN_NODES: tuple[tuple[type[exp.Expression], str], ...] = tuple(
    (node, message)
    for names, message in (
        (("Insert", "Update", "Delete", "Merge", "Returning"),
         "changes data: a dataset may only read; remove the INSERT, UPDATE, DELETE or MERGE"),
        (("Create", "Drop", "Alter", "AlterColumn", "TruncateTable", "Analyze", "Comment", "Copy",
          "LoadData", "Grant", "Revoke", "Transaction", "Commit", "Rollback", "Use", "Set", "SetItem",
          "Command", "Pragma", "Kill", "Execute", "Call", "Show", "Describe", "Cache", "Uncache",
          "Refresh", "Summarize", "Declare"),
         "is a statement other than SELECT: write one plain SELECT"),
        (("Into",), "uses SELECT … INTO, which stores rows: remove INTO"),
        (("Lock",), "locks rows (FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE): remove the locking clause"),
        (("Parameter", "SessionParameter", "Placeholder", "RawString"),
         "uses a variable or parameter (@x, @@x, $1, ?): write the value into the query"),
        (("PropertyEQ",), "assigns a variable (:=): remove the assignment"),
        (("ObjectIdentifier",),
         "uses an object-identifier type (regclass, regproc …), which looks into the catalog: cast to text or a number"),
    )
    for name in names
    if (node := getattr(exp, name, None)) is not None
)


#: Functions that build a text as long as one of their arguments says, by that argument's name in
#: sqlglot: it must be a small number literal, or one SELECT makes the server send gigabytes
#: (repeat('x', 500000000) on every row; PostgreSQL allows 1 GB a value) before any timeout.
_LENGTH_ARGUMENT = {"Repeat": "times", "Pad": "expression", "Space": "this"}
MAX_BUILT_LENGTH = 10_000


class SqlRefused(ValueError):
    """The SQL is not an allowed read-only SELECT; the message says what to change."""


def check_select(sql: str, dialect: Dialect) -> exp.Expression:
    """The syntax tree of `sql` when it is one allowed SELECT in `dialect`; SqlRefused otherwise."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    if not isinstance(sql, str) or not sql.strip():
        raise SqlRefused("must not be empty: write one SELECT statement")
    _refuse_hidden_code(sql, dialect)
    try:
        statements = [
            tree for tree in sqlglot.parse(sql, read=dialect)
            if tree is not None and not isinstance(tree, exp.Semicolon)  # a trailing ; (and comment)
        ]
    except (ParseError, TokenError) as exc:
        raise SqlRefused(
            f"could not be read as one {DIALECTS[dialect]} SELECT statement ({_first_error(exc)}); "
            "INTO OUTFILE / DUMPFILE and other non-SELECT forms are not allowed: write one plain SELECT"
        ) from None
    if not statements:
        raise SqlRefused("must not be empty: write one SELECT statement")
    if len(statements) > 1:
        raise SqlRefused("must be a single statement: remove the semicolon and what follows it")
    tree = statements[0]
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        kind = tree.key.upper() if tree.key != "command" else str(tree.this).upper()
        raise SqlRefused(f"must be one read-only SELECT statement (SELECT … or WITH … SELECT …), not {kind}")
    for node in tree.walk():
        _check_node(node)
    return tree


def to_sql(tree: exp.Expression, dialect: Dialect, *, copy: bool = True) -> str:
    """The checked tree as SQL text in `dialect`, without comments: what is sent to the server.
    copy=False lets the generator change `tree` (for a caller that discards it)."""
    return tree.sql(dialect=dialect, comments=False, copy=copy)


def _refuse_hidden_code(sql: str, dialect: Dialect) -> None:
    """MySQL runs /*! … */ and /*M! … */ and reads /*+ … */ as hints: code sqlglot drops as comments."""
    if dialect != "mysql":
        return
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except TokenError as exc:
        raise SqlRefused(f"could not be read as {DIALECTS[dialect]} ({_first_error(exc)})") from None
    for token in tokens:
        for comment in token.comments:
            if comment.lstrip().startswith(("!", "M!", "+")):
                raise SqlRefused(
                    "uses a MySQL executable comment or optimizer hint (/*! … */, /*+ … */): remove it"
                )


def _check_node(node: exp.Expression) -> None:
    for forbidden, message in _FORBIDDEN_NODES:
        if isinstance(node, forbidden):
            raise SqlRefused(message)
    if isinstance(node, exp.Func):
        _check_function(node)
    elif isinstance(node, exp.Table):
        _check_relation(node)
    elif isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        raise SqlRefused(
            f"calls {node.sql()}: a function may not be qualified with a schema; use the plain name"
        )
    elif isinstance(node, exp.DataType) and isinstance(node.args.get("kind"), exp.Dot):
        # 'x'::pg_catalog.regclass is an ObjectIdentifier in disguise: sqlglot reads a qualified
        # type as user-defined, and 16384::pg_catalog.regclass names any relation by its oid.
        raise SqlRefused(
            f"casts to {node.sql()}: a type may not be qualified with a schema; use a plain type (text, numeric, date …)"
        )


def _check_function(node: exp.Func) -> None:
    length = node.args.get(_LENGTH_ARGUMENT.get(type(node).__name__, ""))
    nested = length is not None and any(
        isinstance(inner, (exp.Repeat, exp.Pad, exp.Space)) for inner in node.find_all(exp.Func) if inner is not node
    )
    if length is not None and (nested or not (
        isinstance(length, exp.Literal) and length.is_int and int(length.name) <= MAX_BUILT_LENGTH
    )):
        raise SqlRefused(
            f"calls {node.sql_name()}() with a length that is not a number up to {MAX_BUILT_LENGTH}, or nested: "
            "write a plain number no larger, once"
        )
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        if name in ALLOWED_NAMED_FUNCTIONS:
            return
        shown = str(node.this)
    else:
        if type(node).__name__ in ALLOWED_FUNCTIONS:
            return
        shown = node.sql_name()
    raise SqlRefused(
        f"calls {shown}(), which is not on the list of allowed functions (aggregates, text, date, maths, "
        "conditionals, casts): remove it"
    )


def _check_relation(node: exp.Table) -> None:
    if not isinstance(node.this, exp.Identifier):
        return  # a table function (its exp.Func node is checked) or a subquery
    parts = [part.name for part in node.parts]
    schemas = [part.lower() for part in parts[:-1]]
    name = parts[-1].lower()
    system = next((schema for schema in schemas if schema in SYSTEM_SCHEMAS), None)
    if system or name.startswith("pg_") or (not schemas and name in SYSTEM_SCHEMAS):
        raise SqlRefused(
            f"reads {'.'.join(parts)}, a system catalog ({system or name}): datasets may read only the "
            "company's own tables and views: use one of those instead"
        )


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        return f"{first.get('description', 'syntax error')} near line {first.get('line')}, column {first.get('col')}"
    return str(exc).splitlines()[0][:200]
