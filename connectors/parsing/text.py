"""Plain text and markdown: decode, tidy whitespace, keep the markdown as written."""

from __future__ import annotations

import re

from connectors.parsing.common import (
    DEFAULT_MAX_CHARS,
    ParsedText,
    clean_title,
    decode_text,
    normalize_text,
    reject_binary,
    too_much_text,
)

_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_H1 = re.compile(r"^ {0,3}=+[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


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
    return ParsedText(text=text, title=markdown_title(text))


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
