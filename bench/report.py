"""How a benchmark hands over its result: one JSON object on standard output, and in --out's file."""

from __future__ import annotations

import json
from pathlib import Path


def report_print(report: dict, out: Path | None = None) -> None:
    """Print `report` as indented JSON, and write the same text to `out` when given."""
    text = json.dumps(report, indent=2)
    if out:
        out.write_text(text + "\n")
    print(text)
