"""PDF: the text layer of every page, pages separated by blank lines.

The outline (bookmarks), where the file has one, gives the headings: each at its title's place
on the page it points to (else at the start of that page), its depth in the outline as level.
"""

from __future__ import annotations

import io
import logging
import struct
import zlib

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from connectors.parsing.common import (
    DEFAULT_MAX_CHARS, MAX_HEADINGS, Heading, ParsedText, ParseError, TextBudget, clean_title, heading_text,
    normalize_text,
)

logger = logging.getLogger(__name__)

# pypdf reports damaged files through its own errors and, for many kinds of damage,
# through plain Python errors raised deep in its object parser (NotImplementedError:
# a stream filter it does not know, often a damaged filter name).
_DAMAGE = (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError, AssertionError,
           RecursionError, OverflowError, ZeroDivisionError, UnicodeError, NotImplementedError,
           zlib.error, struct.error)  # fmt: skip


def parse_pdf(content: bytes, *, max_chars: int = DEFAULT_MAX_CHARS) -> ParsedText:
    if b"%PDF-" not in content[:1024]:
        raise ParseError("Not a valid PDF: the file does not start with a PDF header.")
    try:
        reader = PdfReader(io.BytesIO(content))
        _unlock(reader)
        pages = list(reader.pages)
    except ParseError:
        raise
    except _DAMAGE as exc:
        raise ParseError(f"Not a valid PDF: the file is damaged or incomplete ({_reason(exc)}).") from None

    texts: list[str] = []
    budget = TextBudget(max_chars, "PDF")
    failed = 0
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(normalize_text(page.extract_text() or ""))
            budget.spend(len(texts[-1]) + 2)
        except _DAMAGE as exc:
            # One damaged page should not cost the rest of the document.
            failed += 1
            texts.append("")
            logger.warning("PDF page %s could not be read: %s", number, _reason(exc))
    if pages and failed == len(pages):
        raise ParseError("Not a valid PDF: no page could be read (the file is damaged).")
    text = "\n\n".join(t for t in texts if t)  # no text at all: a scan; the caller reports it
    return ParsedText(text=text, title=_metadata_title(reader), headings=_outline_headings(reader, texts, text))


def _outline_headings(reader: PdfReader, texts: list[str], text: str) -> tuple[Heading, ...]:
    """The outline's entries as headings, in the order of the text (an outline may jump back)."""
    starts, position = [], 0
    for page_text in texts:  # where each page's text starts in `text` (empty pages: where the next starts)
        starts.append(position)
        position += len(page_text) + 2 if page_text else 0
    headings = []
    try:
        for depth, entry in _outline_entries(reader.outline):
            page = reader.get_destination_page_number(entry)
            title = heading_text(getattr(entry, "title", "") or "")
            if title and page is not None and 0 <= page < len(texts):
                found = text.find(title, starts[page], starts[page] + len(texts[page]))
                headings.append(Heading(found if found >= 0 else min(starts[page], len(text)), depth, title))
    except _DAMAGE as exc:  # a damaged outline costs the headings, not the text
        logger.warning("PDF outline could not be read: %s", _reason(exc))
    return tuple(sorted(headings, key=lambda heading: heading.offset))


def _outline_entries(outline, depth: int = 1):
    """(depth, entry) of an outline as pypdf gives it: a list whose nested lists are the
    children of the entry before them. Walked without recursion, at most MAX_HEADINGS."""
    stack = [(depth, iter(outline))]
    count = 0
    while stack and count < MAX_HEADINGS:
        level, items = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
        elif isinstance(item, list):
            stack.append((level + 1, iter(item)))
        else:
            count += 1
            yield level, item


def _unlock(reader: PdfReader) -> None:
    if not reader.is_encrypted:
        return
    try:
        # Many PDFs are "encrypted" only to set permissions, with an empty user password.
        unlocked = reader.decrypt("")
    except (DependencyError, NotImplementedError) as exc:
        raise ParseError(f"The PDF uses an encryption this server cannot open: {_reason(exc)}") from None
    except FileNotDecryptedError:
        unlocked = 0
    if not unlocked:
        raise ParseError("The PDF is password-protected; remove the password and add it again.")


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return clean_title(metadata.title) if metadata is not None else None
    except _DAMAGE:
        return None


def _reason(exc: Exception) -> str:
    return str(exc).strip() or exc.__class__.__name__
