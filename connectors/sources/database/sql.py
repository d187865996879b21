"""Names, templates and the conditions queries are built from: identifiers checked and quoted,
template placeholders, keyset conditions (values always travel as parameters)."""

from __future__ import annotations

import re
import string
from typing import Any


#: MySQL names this connector accepts (per part of "schema.table").
MYSQL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
#: Template placeholders: a plain name, no attribute or index access.
PLACEHOLDER = re.compile(r"[^\W\d][\w$]*")
#: Format specs allowed after a placeholder's colon: numbers like {price:.2f} or {n:>5} (no
#: nesting, small widths), and dates like {day:%Y-%m-%d}.
FORMAT_SPEC = re.compile(
    r"(?:[^{}]?[<>=^])?[+\- ]?#?0?(?:\d{1,3})?[,_]?(?:\.\d{1,2})?[bcdeEfFgGnosxX%]?"
    r"|(?=[^%]*%)[%A-Za-z0-9 :/.,_\-]{1,40}"
)
DATASET_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: Keys of a document's metadata that metadata columns may not take.
RESERVED_METADATA = frozenset({"dataset", "table", "row"})
MAX_IDENTIFIER_LENGTH = 128
PG_ITERSIZE = 500
MYSQL_PAGE_SIZE = 500
FETCH_CHUNK = 100


def quote_mysql_identifier(name: str, *, qualified: bool = False) -> str:
    """`name` quoted with backticks for MySQL (backticks doubled), after checking every part
    is a plain name; with `qualified`, "schema.table" is allowed. Raise ValueError otherwise."""
    parts = name.split(".") if qualified else [name]
    if qualified and len(parts) > 2:
        raise ValueError(f"{name!r} has too many dots: use table or schema.table")
    for part in parts:
        if not MYSQL_IDENTIFIER.fullmatch(part) or len(part) > 64:
            raise ValueError(
                f"{name!r} is not an allowed MySQL name: use letters, digits, _ and $ "
                "(not starting with a digit, at most 64 characters)"
            )
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def _check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must not be empty")
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(f"{what} {name[:40]!r}… is longer than {MAX_IDENTIFIER_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(f"{what} {name!r} contains control characters")
    if name != name.strip():
        raise ValueError(f"{what} {name!r} starts or ends with spaces")
    return name


def template_fields(template: str) -> list[str]:
    """The column names a template uses; ValueError for anything but plain {name} placeholders."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write literal braces as {{{{ and }}}}") from None
    fields = []
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field:
            raise ValueError("has an empty placeholder {}: name a column, like {title}")
        if not PLACEHOLDER.fullmatch(field):
            raise ValueError(
                f"placeholder {{{field}}} must be a plain column name (no dots, brackets or expressions)"
            )
        if conversion is not None:
            raise ValueError(f"placeholder {{{field}!{conversion}}}: conversions (!r, !s, !a) are not allowed")
        if spec and not FORMAT_SPEC.fullmatch(spec):
            raise ValueError(f"placeholder {{{field}:{spec}}} has an unsupported format")
        fields.append(field)
    return fields


class _Cond:
    """A WHERE condition, rendered by a dialect; values always as parameters."""

    def __init__(self, kind: str, columns: list[str], values: list[Any] | None = None):
        self.kind, self.columns, self.values = kind, columns, values or []


def _not_null(column: str) -> _Cond:
    return _Cond("not_null", [column])


def _is_null(column: str) -> _Cond:
    return _Cond("is_null", [column])


def _greater(column: str, value: Any) -> _Cond:
    return _Cond("greater", [column], [value])


def _after(columns: list[str], values: list[Any]) -> _Cond:
    """The row-value comparison (c1, c2, ...) > (v1, v2, ...): keyset pagination."""
    return _Cond("after", columns, values)


def _matches(columns: list[str], rows: list[list[Any]]) -> _Cond:
    return _Cond("matches", columns, rows)
