"""Plain text and markdown: decode, tidy whitespace, keep the markdown as written.

Markdown headings (`## Heading`, or a line underlined with === or ---) are reported with their
level and the offset of their line, outside fenced code blocks.
"""

from __future__ import annotations

import re

from connectors.parsing.common import (
    DEFAULT_MAX_CHARS,
    MAX_HEADINGS,
    Heading,
    ParsedText,
    clean_title,
    decode_text,
    normalize_text,
    heading_text,
    reject_binary,
    too_much_text,
)

_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_H1 = re.compile(r"^ {0,3}=+[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# A line that cannot be the text of a heading underlined with ---: a list item, a quote, a table row.
_NOT_SETEXT_TEXT = re.compile(r"^ {0,3}([-*+>|]|\d+[.)])( |$)|^ {4}")


def parse_text(content: bytes, *, charset: str = "", max_chars: int = DEFAULT_MAX_CHARS) -> ParsedText:
    text = decode_text(content, charset=charset)
    if len(text) > max_chars:  # clean-up only shortens it: refuse before the work
        raise too_much_text("text file", max_chars)
    reject_binary(text, kind="text")
    return ParsedText(text=normalize_text(text, keep_indent=True), title=None)


def parse_markdown(content: bytes, *, charset: str = "", max_chars: int = DEFAULT_MAX_CHARS) -> ParsedText:
    text = decode_text(content, charset=charset)
    if len(text) > max_chars:
        raise too_much_text("Markdown file", max_chars)
    reject_binary(text, kind="markdown")
    text = normalize_text(text, keep_indent=True)
    return ParsedText(text=text, title=markdown_title(text), headings=markdown_headings(text))


def markdown_headings(text: str) -> tuple[Heading, ...]:
    """ATX (`## Heading`) and setext (a one-line paragraph underlined with === or ---) headings,
    outside fenced code blocks, at the offset of their line."""
    headings: list[Heading] = []
    in_fence = False
    offset = 0
    previous_blank = True  # the line before this one was blank, or there was none
    candidate: tuple[int, str] | None = None  # the line before, when it is a one-line paragraph
    for line in text.split("\n"):
        heading = None
        fence = _FENCE.match(line) is not None
        if fence:
            in_fence = not in_fence
        elif not in_fence:
            atx, setext = _ATX.match(line), _SETEXT.match(line)
            if atx:
                heading = Heading(offset, len(atx.group(1)), heading_text(atx.group(2)))
            elif setext and candidate is not None:
                heading = Heading(candidate[0], 1 if setext.group(1)[0] == "=" else 2, heading_text(candidate[1]))
        if heading is not None and heading.text:
            headings.append(heading)
            if len(headings) >= MAX_HEADINGS:
                break
        blank = not line.strip()
        is_text = not (fence or in_fence or blank or heading or _NOT_SETEXT_TEXT.match(line))
        candidate = (offset, line) if is_text and previous_blank else None
        previous_blank = blank
        offset += len(line) + 1
    return tuple(headings)


def markdown_title(text: str) -> str | None:
    """The first level-one heading (`# Title` or a line underlined with ===), outside code fences."""
    in_fence = False
    previous = ""
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            line = ""  # a fence is never the text of a heading underlined with ===
        elif not in_fence:
            match = _ATX_H1.match(line)
            if match:
                return clean_title(match.group(1))
            if _SETEXT_H1.match(line) and previous.strip():
                return clean_title(previous)
        previous = line
    return None
