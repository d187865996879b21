"""Bytes of a document → its text and title, one small module per file type.

    parse_document(content, filename="guide.pdf", limits=ParseLimits(...))  ->  ParsedText(text=..., title=...)

Unreadable files raise ParseError with a reason an admin can act on; a PDF without a
text layer (a scan) returns empty text, which the caller reports.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable

from connectors.parsing.common import ParsedText, ParseError
from connectors.parsing.csv import parse_csv
from connectors.parsing.docx import parse_docx
from connectors.parsing.html import parse_html
from connectors.parsing.limits import DEFAULT_LIMITS, ParseCancelled, ParseLimits, run_limited, zip_expansion_check
from connectors.parsing.pdf import parse_pdf
from connectors.parsing.text import parse_markdown, parse_text

__all__ = ["ParseCancelled", "ParseError", "ParseLimits", "ParsedText", "SUPPORTED_EXTENSIONS", "media_type_for", "parse_document"]

logger = logging.getLogger(__name__)

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# Extension → (canonical media type, parser kind).
_BY_EXTENSION: dict[str, tuple[str, str]] = {
    ".txt": ("text/plain", "text"),
    ".md": ("text/markdown", "markdown"),
    ".markdown": ("text/markdown", "markdown"),
    ".html": ("text/html", "html"),
    ".htm": ("text/html", "html"),
    ".pdf": ("application/pdf", "pdf"),
    ".docx": (_DOCX, "docx"),
    ".csv": ("text/csv", "csv"),
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_BY_EXTENSION)

# Media type → parser kind, including the aliases browsers and servers send.
_BY_MEDIA_TYPE: dict[str, str] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    _DOCX: "docx",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/comma-separated-values": "csv",
}

_PARSERS = {
    "text": parse_text,
    "markdown": parse_markdown,
    "html": parse_html,
    "pdf": parse_pdf,
    "docx": parse_docx,
    "csv": parse_csv,
}

#: Binary formats are always read in a child process under time and memory limits (a few
#: kilobytes of them can unpack to gigabytes); text formats only when they are large.
_ALWAYS_ISOLATED = frozenset({"pdf", "docx"})
ISOLATE_TEXT_OVER_BYTES = 256 * 1024
_WHAT = {
    "text": "text file", "markdown": "Markdown file", "html": "HTML page", "pdf": "PDF",
    "docx": "Word document", "csv": "CSV file",
}  # fmt: skip

_LISTED = ", ".join([".txt", ".md", ".html", ".pdf", ".docx", ".csv"])


def _extension(filename: str) -> str:
    name = posixpath.basename(filename.replace("\\", "/")).lower()
    stem, dot, ext = name.rpartition(".")
    return f".{ext}" if dot and stem else ""


def media_type_for(filename: str) -> str:
    """The media type of a supported file name ("application/pdf"), or "" when unsupported."""
    entry = _BY_EXTENSION.get(_extension(filename))
    return entry[0] if entry else ""


def _kind(filename: str, media_type: str) -> tuple[str, str]:
    """(parser kind, charset) from the media type when it is specific, else from the extension."""
    essence, _, params = media_type.partition(";")
    essence = essence.strip().lower()
    charset = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"')
    by_extension = _BY_EXTENSION.get(_extension(filename))
    kind = _BY_MEDIA_TYPE.get(essence)
    # "text/plain" is what many clients send for any text file (.md, .csv): the name says more.
    if kind is None or (kind == "text" and by_extension and by_extension[1] in ("markdown", "csv", "html")):
        kind = by_extension[1] if by_extension else None
    if kind is None:
        shown = _extension(filename) or essence
        what = f"file type {shown}" if shown else "file without an extension"
        raise ParseError(f"Unsupported {what}; supported: {_LISTED}.")
    return kind, charset


def parse_document(
    content: bytes,
    *,
    filename: str,
    media_type: str = "",
    isolate: bool | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
    cancelled: Callable[[], bool] | None = None,
) -> ParsedText:
    """Extract the text and title of one document; raise ParseError when it cannot be read.

    Archives that would unpack enormously are refused before they are opened, and the parser
    runs under the time and memory `limits` in a child process (see connectors.parsing.limits);
    `isolate` forces that choice either way (tests). Every parser stops as soon as its text
    passes `limits.max_chars`. The caller passes the limits (from its settings): this
    package never reads Django's. `cancelled`, when given, is asked about once a second
    while an isolated parser works; a yes stops it with ParseCancelled.
    """
    kind, charset = _kind(filename, media_type)
    what = _WHAT[kind]
    if kind == "docx":
        zip_expansion_check(content, what=what, max_expanded=limits.max_expanded_bytes)
    if isolate is None:
        isolate = kind in _ALWAYS_ISOLATED or len(content) > ISOLATE_TEXT_OVER_BYTES
    if isolate:
        return run_limited(
            _parse, kind, content, charset, filename, limits.max_chars,
            timeout=limits.timeout_seconds, memory_bytes=limits.max_memory_bytes, what=what, cancelled=cancelled,
        )  # fmt: skip
    return _parse(kind, content, charset, filename, limits.max_chars)


def _parse(kind: str, content: bytes, charset: str, filename: str, max_chars: int) -> ParsedText:
    try:
        if kind in ("pdf", "docx"):  # binary formats: no charset
            return _PARSERS[kind](content, max_chars=max_chars)
        return _PARSERS[kind](content, charset=charset, max_chars=max_chars)
    except ParseError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        # A file that trips a parser library must fail alone, not abort the whole sync run.
        logger.warning("parsing %s as %s failed", filename, kind, exc_info=True)
        raise ParseError(f"The {kind} file could not be read: {str(exc).strip() or exc.__class__.__name__}") from None
