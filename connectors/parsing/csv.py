"""CSV: each row becomes a block of "header: value" lines, so every value is searchable
together with the name of its column.

Rows are read one at a time and their text is counted as it is produced, so a hostile
file (millions of columns, one cell of megabytes, millions of empty lines) costs time
linear in its size and is stopped at `max_chars` instead of being built whole first.
"""

from __future__ import annotations

import csv
import io

from connectors.parsing.common import (
    DEFAULT_MAX_CHARS,
    ParsedText,
    ParseError,
    TextBudget,
    decode_text,
    normalize_text,
    reject_binary,
    too_much_text,
)

_DELIMITERS = ",;\t|"
# The sniffer's work grows with lines x characters of its sample (seconds for 64 KB of
# one-character lines): a few dozen lines tell the dialect as well as thousands.
_SNIFF_CHARS = 16 * 1024
_SNIFF_LINES = 50
_JOIN_EVERY = 4096


def parse_csv(content: bytes, *, charset: str = "", max_chars: int = DEFAULT_MAX_CHARS) -> ParsedText:
    text = decode_text(content, charset=charset)
    if "\x00" in text:
        text = text.replace("\x00", "")
    reject_binary(text, kind="CSV")
    _allow_fields(max_chars)
    budget = TextBudget(max_chars, "CSV file")
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    header: list[str] | None = None
    blocks: list[str] = []  # the latest rows' blocks, joined into `parts` every _JOIN_EVERY rows
    parts: list[str] = []
    try:
        for row in reader:
            if not any(cell and not cell.isspace() for cell in row):
                continue
            if header is None:
                header = [" ".join(h.split()) for h in row]
                budget.spend(sum(map(len, header)) + 3 * len(header))
                continue
            block = _block(header, row)
            budget.spend(len(block) + 2)
            blocks.append(block)
            if len(blocks) >= _JOIN_EVERY:  # millions of tiny rows: one string per batch, not per row
                parts.append("\n\n".join(blocks))
                blocks = []
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):  # one cell longer than the whole budget
            raise too_much_text("CSV file", max_chars) from None
        raise ParseError(f"Not a readable CSV file: {exc}") from None
    if header is None:
        return ParsedText(text="", title=None)
    if blocks:
        parts.append("\n\n".join(blocks))
    if not parts:
        return ParsedText(text=normalize_text(" | ".join(header)), title=None)
    return ParsedText(text=normalize_text("\n\n".join(parts)), title=None)


def _block(header: list[str], row: list[str]) -> str:
    lines = []
    for index, value in enumerate(row):
        value = " ".join(value.split())
        if value:
            name = header[index] if index < len(header) and header[index] else f"Column {index + 1}"
            lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _allow_fields(max_chars: int) -> None:
    """The csv module refuses a field over 128 KB by default: a long cell is a legitimate
    value up to the document's own text limit, which bounds it instead. (Process-wide and
    only ever raised, so concurrent parsers never see it lowered.)"""
    if csv.field_size_limit() < max_chars:
        csv.field_size_limit(max_chars)


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:_SNIFF_CHARS]
    cut = -1
    for _ in range(_SNIFF_LINES):
        cut = sample.find("\n", cut + 1)
        if cut < 0:
            break
    if cut >= 0:
        sample = sample[:cut]  # whole lines only: a cut-off last line misleads the sniffer
    elif len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        pass
    # The sniffer gives up on ragged rows and odd quoting: go by the header line, else commas.
    header = sample.split("\n", 1)[0]
    counts = {delimiter: header.count(delimiter) for delimiter in _DELIMITERS}
    best = max(counts, key=counts.get)

    class Fallback(csv.excel):
        delimiter = best if counts[best] else ","

    return Fallback
