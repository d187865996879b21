"""Row values as text, JSON, external ids and cursors; templates rendered over a row."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import string
from collections.abc import Mapping
from typing import Any

from connectors.sources.database.config import DatabaseConfig, Dataset


_BINARY = (bytes, bytearray, memoryview)


def _display(value: Any) -> str:
    """A value as text in a document (title, text, location)."""
    if value is None or isinstance(value, _BINARY):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value if v is not None)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _json_value(value: Any) -> Any:
    """A value as JSON-serialisable metadata."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, _BINARY):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _id_text(value: Any) -> str:
    if isinstance(value, _BINARY):
        return bytes(value).hex()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return _display(value)


def _escape_id(text: str) -> str:
    return text.replace("%", "%25").replace("|", "%7C").replace(":", "%3A")


def _unescape_id(text: str) -> str:
    return text.replace("%3A", ":").replace("%7C", "|").replace("%25", "%")


def _cursor_json(value: Any) -> Any:
    """An updated-at value as it is stored in the checkpoint: ISO text or a number."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    return _display(value)


def _later(a: Any, b: Any) -> bool:
    try:
        return a > b
    except TypeError:
        return True


def _aware(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None


def _parse_groups(value: Any) -> tuple[str, ...]:
    """Group names from an ACL column: an array, a JSON array, or comma-separated text."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                value = text.strip("[]").split(",")
        else:
            value = text.split(",")
    elif not isinstance(value, (list, tuple)):
        value = [value]
    names = {_display(v).strip().strip('"').strip() for v in value if v is not None}
    return tuple(sorted(name for name in names if name))


def render_template(template: str, row: Mapping[str, Any]) -> str:
    """Fill {column} placeholders from the row (NULL as empty text), without str.format's
    attribute or index access."""
    out = []
    for literal, field, spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        value = row[field]
        if spec and value is not None and not isinstance(value, _BINARY):
            try:
                out.append(format(value, spec))
                continue
            except (ValueError, TypeError):
                pass
        out.append(_display(value))
    return "".join(out)


def _fingerprint(config: DatabaseConfig, ds: Dataset) -> str:
    """Changes whenever the rows a dataset selects or the documents they become change."""
    basis = {
        "server": [config.host, config.port, config.database],
        # Not the description (the documents do not change); the newer keys only when set, so
        # datasets that do not use them keep their fingerprint.
        "dataset": ds.model_dump(
            mode="json",
            exclude={"name", "description"} | {key for key in ("denied_columns", "text_columns") if not getattr(ds, key)},
        ),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def _first_line(message: str) -> str:
    line = (message or "").strip().splitlines()[0] if (message or "").strip() else ""
    return line.removeprefix("ERROR:").removeprefix("FATAL:").strip()
