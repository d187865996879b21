"""HTML: visible text with paragraphs as blank-line-separated blocks, headings on their own lines.

The h1-h6 headings are reported with their level and where they start in the text.
"""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag
from bs4.builder import ParserRejectedMarkup
from bs4.dammit import UnicodeDammit

from connectors.parsing.common import (
    DEFAULT_MAX_CHARS, ParsedText, ParseError, TextBudget, clean_title, locate_headings, normalize_text,
)

# XHTML pages (generated manuals) parse fine as HTML; the warning would flood worker logs.
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)

# Never visible, or page chrome repeated on every page of a site.
_DROP = frozenset({"script", "style", "nav", "noscript", "template", "svg", "iframe", "object", "head"})
# Blocks separated from their neighbours by a blank line.
_PARAGRAPHS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "blockquote", "pre",
        "section", "article", "header", "footer", "main", "aside", "figure", "form", "fieldset",
        "address", "details", "hr",
    }
)  # fmt: skip
# Blocks that start a new line but not a new paragraph.
_LINES = frozenset({"div", "li", "tr", "dt", "dd", "figcaption", "summary", "caption", "br", "legend"})
_CELLS = frozenset({"td", "th"})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_HEADING_END = ("/h", 0)  # in the pieces: where a heading's text ends
_SKIP_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)
_WHITESPACE = re.compile(r"\s+")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_html(content: bytes, *, charset: str = "", max_chars: int = DEFAULT_MAX_CHARS) -> ParsedText:
    if not content.startswith((b"\xff\xfe", b"\xfe\xff")):  # NUL is a character only in UTF-16
        content = content.replace(b"\x00", b"")
    try:
        # Bytes, not str: BeautifulSoup honours the page's own <meta charset>.
        soup = BeautifulSoup(content, "lxml", from_encoding=charset or None)
    except ValueError:
        # lxml refuses control characters; decode, drop them, and parse the text instead.
        markup = UnicodeDammit(content, [charset] if charset else []).unicode_markup or ""
        try:
            soup = BeautifulSoup(_CONTROLS.sub("", markup), "lxml")
        except (ValueError, ParserRejectedMarkup) as exc:
            raise ParseError(f"Not a readable HTML page: {exc}") from None
    except ParserRejectedMarkup as exc:
        raise ParseError(f"Not a readable HTML page: {exc}") from None
    title = _title(soup)
    for tag in soup.find_all(_DROP):
        tag.decompose()
    raw, marks = _render(soup, TextBudget(max_chars, "HTML page"))
    text = normalize_text(raw)
    return ParsedText(text=text, title=title, headings=locate_headings(raw, text, marks))


def _title(soup: BeautifulSoup) -> str | None:
    if soup.title is not None:
        title = clean_title(soup.title.get_text(" "))
        if title:
            return title
    h1 = soup.find("h1")
    return clean_title(h1.get_text(" ")) if h1 is not None else None


def _render(root: Tag, budget: TextBudget) -> tuple[str, list[tuple[int, int, int]]]:
    """Walk the tree without recursion (deeply nested pages exist) and emit text with breaks,
    and where each heading's text is in it: (start, end, level).

    Breaks are recorded as numbers (1: new line, 2: blank line) and merged, so nested
    blocks (<div><p>) give one blank line, not several.
    """
    pieces: list[str | int | tuple[str, int]] = []
    # Each entry is a node to visit, a break to emit once an element's children are done,
    # or the end of a heading.
    stack: list[Tag | NavigableString | int | tuple[str, int]] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, (int, tuple)):
            pieces.append(node)
        elif isinstance(node, NavigableString):
            if not isinstance(node, _SKIP_STRINGS):
                piece = _WHITESPACE.sub(" ", str(node))
                budget.spend(len(piece))
                pieces.append(piece)
        else:
            name = node.name
            closing = 0
            if name in _PARAGRAPHS:
                pieces.append(2)
                closing = 2
            elif name == "br":
                pieces.append(1)
            elif name in _LINES:
                pieces.append(1)
                closing = 1
                if name == "li":
                    pieces.append("- ")
            elif name in _CELLS:
                # A cell is one line of a row: its inner paragraphs are flattened.
                if _follows_a_cell(node):
                    pieces.append(" | ")
                piece = " ".join(node.get_text(" ").split())
                budget.spend(len(piece) + 3)
                pieces.append(piece)
                continue
            if closing:
                stack.append(closing)
            if name in _HEADINGS:
                pieces.append(("h", _HEADINGS[name]))
                stack.append(_HEADING_END)
            stack.extend(reversed(node.contents))
    return _join(pieces)


def _follows_a_cell(node: Tag) -> bool:
    """Whether a cell has a cell before it in its row (what find_previous_sibling(_CELLS) says,
    without building a search filter per cell: a row of 100,000 cells stays fast)."""
    sibling = node.previous_sibling
    while sibling is not None:
        if isinstance(sibling, Tag) and sibling.name in _CELLS:
            return True
        sibling = sibling.previous_sibling
    return False


def _join(pieces: list[str | int | tuple[str, int]]) -> tuple[str, list[tuple[int, int, int]]]:
    out: list[str] = []
    pending = 0
    length = 0
    marks: list[tuple[int, int, int]] = []
    open_headings: list[tuple[int, int]] = []  # (start, level)
    for piece in pieces:
        if isinstance(piece, tuple):
            if piece is _HEADING_END:
                if open_headings:
                    start, level = open_headings.pop()
                    marks.append((start, length, level))
            else:
                open_headings.append((length, piece[1]))
        elif isinstance(piece, int):
            pending = max(pending, piece)
        elif pending and not piece.strip():
            continue  # indentation between blocks
        else:
            if pending and out:
                out.append("\n" * pending)
                length += pending
            pending = 0
            out.append(piece)
            length += len(piece)
    marks.sort()  # by start: a heading nested in another (invalid, but seen) ends first
    return "".join(out), marks
