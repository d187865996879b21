"""What every parser shares: the result type, the error type, and text clean-up."""

from __future__ import annotations

import re
from dataclasses import dataclass


class ParseError(Exception):
    """The file cannot be read; the message says why in plain words (shown to admins)."""


#: Characters of text one document may yield unless the caller says otherwise (PARSE_MAX_CHARS).
DEFAULT_MAX_CHARS = 10_000_000


def too_much_text(what: str, max_chars: int) -> ParseError:
    return ParseError(
        f"The {what} holds more than {max_chars:,} characters of text (PARSE_MAX_CHARS); "
        "reading stopped there. Split it into smaller files."
    )


class TextBudget:
    """Counts the characters a parser emits as it goes, and stops it past `max_chars`.

    Checked piece by piece, so a hostile file is refused when it crosses the limit, not
    after its whole text has been built in memory.
    """

    __slots__ = ("max_chars", "used", "what")

    def __init__(self, max_chars: int, what: str):
        self.max_chars, self.what, self.used = max_chars, what, 0

    def spend(self, chars: int) -> None:
        self.used += chars
        if self.used > self.max_chars:
            raise too_much_text(self.what, self.max_chars)


@dataclass(frozen=True)
class Heading:
    """A heading the file's structure marks (HTML h1-h6, Markdown #, a Word heading style, a PDF
    bookmark): where it starts in the extracted text, its level (1 = outermost) and its text."""

    offset: int
    level: int
    text: str


@dataclass(frozen=True)
class ParsedText:
    text: str
    title: str | None
    #: In document order; offsets into `text`, which the headings never change.
    headings: tuple[Heading, ...] = ()


# Horizontal whitespace of any script (tabs, no-break and typographic spaces).
_SPACES = re.compile(r"[^\S\n]+")
# Characters that only get in the way of search: zero-width space, BOM, soft hyphen, and
# C0 controls other than tab/newline (PDF extractors emit them for unmapped glyphs).
_INVISIBLE = re.compile(r"[\u200b\ufeff\u00ad\x00-\x08\x0b\x0e-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")
# After runs of spaces are collapsed to one: the space at either edge of a line.
_LINE_EDGES = re.compile(r" ?\n ?")


def normalize_text(text: str, *, keep_indent: bool = False) -> str:
    """Collapse runs of spaces, keep at most one blank line between paragraphs, drop NULs.

    `keep_indent` keeps each line's leading whitespace (markdown code blocks, nested
    lists in plain text) and only collapses the spaces after it.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Form feed is a page break in text files and PDFs; the Unicode separators are line breaks.
    text = text.replace("\x0c", "\n\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = text.replace("\x85", "\n")
    text = _INVISIBLE.sub("", text)
    if not keep_indent:
        # Whole-text substitutions, not a list of lines: millions of short lines (a CSV of one
        # character per row) would cost ~50 bytes of list and string overhead each.
        text = _LINE_EDGES.sub("\n", _SPACES.sub(" ", text))
        return _BLANK_LINES.sub("\n\n", text).strip()
    lines = []
    for line in text.split("\n"):
        body = line.lstrip()
        indent = line[: len(line) - len(body)].replace("\t", "    ") if body else ""
        lines.append(indent + _SPACES.sub(" ", body).rstrip())
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines))
    return text.strip("\n")


#: Headings kept per document, and characters of each (a "heading" can be a whole styled page).
MAX_HEADINGS = 5000
HEADING_MAX_CHARS = 200


def locate_headings(raw: str, text: str, marks: list[tuple[int, int, int]]) -> tuple[Heading, ...]:
    """Headings marked in `raw` as (start, end, level), placed in `text`, the normalize_text of
    `raw` (so offsets are into the text the document keeps; the text itself is not touched).

    Normalizing only drops and collapses characters (a form feed or paragraph separator grows
    to two newlines), so a heading that starts at `start` in `raw` starts in `text` no earlier
    than `start` minus what was dropped in all: each is looked for in that narrow window, after
    the previous one, as its own normalized text. One not found (markup the text renders
    differently) is left out.
    """
    shrink = max(0, len(raw) - len(text))
    growth = raw.count("\x0c") + raw.count("\u2029")
    headings: list[Heading] = []
    cursor = 0
    for start, end, level in marks:
        needle = normalize_text(raw[start:end])
        if not needle:
            continue
        position = text.rfind(needle, max(cursor, start - shrink - growth), min(len(text), end + growth))
        if position < 0:
            continue
        headings.append(Heading(position, level, heading_text(needle)))
        cursor = position + len(needle)
        if len(headings) >= MAX_HEADINGS:
            break
    return tuple(headings)


def heading_text(value: str) -> str:
    return (clean_title(value) or "")[:HEADING_MAX_CHARS]


def clean_title(value: object) -> str | None:
    """A one-line title, or None when the value is missing or blank."""
    if value is None:
        return None
    title = _SPACES.sub(" ", _INVISIBLE.sub("", str(value)).replace("\n", " ")).strip()
    return title[:500] or None


def decode_text(content: bytes, *, charset: str = "") -> str:
    """Decode bytes of a text file: BOM first, then a declared charset, UTF-8, cp1252, latin-1."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if content.startswith(bom):
            return content[len(bom) :].decode(encoding, errors="replace")
    candidates = [charset] if charset else []
    # cp1252 before latin-1: Windows files use its curly quotes and euro sign in 0x80-0x9f.
    candidates += ["utf-8", "cp1252"]
    for encoding in candidates:
        try:
            return content.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return content.decode("latin-1")  # never fails: every byte is a character


def reject_binary(text: str, *, kind: str) -> None:
    """Refuse decoded text that is mostly control characters (a binary file with a text name)."""
    sample = text[:8192]
    if not sample:
        return
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\x0c")
    if controls / len(sample) > 0.1:
        raise ParseError(f"Not a {kind} file: it contains binary data.")
