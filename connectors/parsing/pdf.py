"""PDF: the text layer of every page, pages separated by blank lines."""

from __future__ import annotations

import io
import logging
import struct
import zlib

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from connectors.parsing.common import DEFAULT_MAX_CHARS, ParsedText, ParseError, TextBudget, clean_title, normalize_text

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
            logger.warning("PDF page %s could not be read: %s", number, _reason(exc))
    if pages and failed == len(pages):
        raise ParseError("Not a valid PDF: no page could be read (the file is damaged).")
    text = "\n\n".join(t for t in texts if t)  # no text at all: a scan; the caller reports it
    return ParsedText(text=text, title=_metadata_title(reader))


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
