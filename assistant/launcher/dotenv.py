"""`.env` in the repository root: read into the environment without overriding what is set."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path




def parse_dotenv(text: str) -> dict[str, str]:
    """Parse simple `KEY=VALUE` lines: comments, blank lines, `export `, quotes, trailing ` # comment`."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or not (key.replace("_", "a").isalnum() and not key[0].isdigit()):
            continue  # not an assignment; ignore rather than guess
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        elif value and value[0] in "\"'":
            # Opening quote with a comment after the closing one: KEY="a b"  # note
            end = value.find(value[0], 1)
            value = value[1:end] if end > 0 else value[1:]
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        values[key] = value
    return values


def load_dotenv(path: Path, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Apply `path` to the environment without overriding what is already set; returns what was applied."""
    environ = os.environ if environ is None else environ
    if not path.is_file():
        return {}
    applied = {}
    for key, value in parse_dotenv(path.read_text(encoding="utf-8")).items():
        if key not in environ:
            environ[key] = value
            applied[key] = value
    return applied


# --- decisions ------------------------------------------------------------------------------
