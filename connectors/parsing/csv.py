"""CSV: each row becomes a block of "header: value" lines, so every value is searchable
together with the name of its column."""

from __future__ import annotations

import csv
import io

from connectors.parsing.common import ParsedText, ParseError, decode_text, normalize_text, reject_binary

_DELIMITERS = ",;\t|"


def parse_csv(content: bytes, *, charset: str = "") -> ParsedText:
    text = decode_text(content, charset=charset).replace("\x00", "")
    reject_binary(text, kind="CSV")
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline=""), _dialect(text)) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise ParseError(f"Not a readable CSV file: {exc}") from None
    if not rows:
        return ParsedText(text="", title=None)
    header = [" ".join(h.split()) for h in rows[0]]
    if len(rows) == 1:
        return ParsedText(text=normalize_text(" | ".join(header)), title=None)

    blocks = []
    for row in rows[1:]:
        lines = []
        for index, value in enumerate(row):
            value = " ".join(value.split())
            if value:
                name = header[index] if index < len(header) and header[index] else f"Column {index + 1}"
                lines.append(f"{name}: {value}")
        blocks.append("\n".join(lines))
    return ParsedText(text=normalize_text("\n\n".join(blocks)), title=None)


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:65536]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut-off last line misleads the sniffer
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
