"""Word (.docx): paragraphs and tables in document order; table rows as "cell | cell" lines.

Paragraphs styled "Heading 1" to "Heading 9" are reported as headings of that level.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from lxml.etree import XMLSyntaxError

from connectors.parsing.common import (
    DEFAULT_MAX_CHARS, ParsedText, ParseError, TextBudget, clean_title, locate_headings, normalize_text,
)

# The built-in heading styles: their name ("Heading 2") or, in a localised Word, their id ("Heading2").
_HEADING_STYLE = re.compile(r"^heading ?([1-9])$", re.IGNORECASE)


def parse_docx(content: bytes, *, max_chars: int = DEFAULT_MAX_CHARS) -> ParsedText:
    if content[:4] == b"\xd0\xcf\x11\xe0":  # OLE2: the old binary .doc format
        raise ParseError("Not a valid Word document: this is an old .doc file; save it as .docx.")
    try:
        document = docx.Document(io.BytesIO(content))
    except zipfile.BadZipFile:
        if content.startswith(b"PK"):
            raise ParseError("Not a valid Word document: the ZIP package is damaged or incomplete.") from None
        raise ParseError("Not a valid Word document: the file is not a .docx (ZIP) package.") from None
    except (PackageNotFoundError, KeyError, ValueError, XMLSyntaxError) as exc:
        # ValueError: a ZIP of another kind (.xlsx, .pptx); KeyError: a part is missing.
        raise ParseError(f"Not a valid Word document: {_reason(exc)}") from None
    except (zlib.error, EOFError) as exc:
        raise ParseError(f"Not a valid Word document: the file is damaged ({_reason(exc)}).") from None
    raw, marks = _body_text(document, TextBudget(max_chars, "Word document"))
    text = normalize_text(raw)
    return ParsedText(
        text=text,
        title=clean_title(document.core_properties.title) or _styled_title(document),
        headings=locate_headings(raw, text, marks),
    )


def _body_text(document, budget: TextBudget) -> tuple[str, list[tuple[int, int, int]]]:
    """The blocks joined by blank lines, and where each heading paragraph is: (start, end, level)."""
    blocks: list[str] = []
    marks: list[tuple[int, int, int]] = []
    length = 0
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = _table_lines(item)
            if rows:
                blocks.append("\n".join(rows))
        elif item.text.strip():
            blocks.append(item.text)
            level = _heading_level(item)
            if level:
                marks.append((length, length + len(item.text), level))
        else:
            continue
        budget.spend(len(blocks[-1]) + 2)
        length += len(blocks[-1]) + 2
    return "\n\n".join(blocks), marks


def _heading_level(paragraph) -> int:
    style = paragraph.style
    if style is None:
        return 0
    match = _HEADING_STYLE.match(style.name or "") or _HEADING_STYLE.match(style.style_id or "")
    return int(match.group(1)) if match else 0


def _table_lines(table: Table) -> list[str]:
    lines = []
    for row in table.rows:
        cells = []
        previous = None
        for cell in row.cells:
            # A horizontally merged cell is returned once per grid column; keep it once.
            if previous is not None and cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def _reason(exc: Exception) -> str:
    return str(exc).strip() or exc.__class__.__name__


def _styled_title(document) -> str | None:
    """Without a title property, the first paragraph styled as the title or a top heading."""
    for paragraph in document.paragraphs[:50]:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style in ("Title", "Heading 1") and paragraph.text.strip():
            return clean_title(paragraph.text)
    return None
