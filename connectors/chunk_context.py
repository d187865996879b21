"""The context a chunk is embedded with: its document's title and the headings above it.

The third chunk of a page called "Travel policy" rarely says it is about travel. What is
embedded (and what the full-text vector holds) is therefore a short header plus the chunk:

    Travel policy › Abroad › Per diem

    Employees receive 45 EUR a day when ...

- One line, pieces joined by " › " (a breadcrumb): the cheapest form that still reads as
  text to a sentence embedder: no "Title:"/"Section:" labels spending tokens on every chunk
  of the index. A blank line keeps the chunk's first sentence from reading as part of it.
- At most HEADER_MAX_TOKENS tokens (inference.tokens counting), so the header never pushes
  the chunk's own end out of the embedding model's window: all-MiniLM-L6-v2 reads 256 word
  pieces, and a chunk of 200 counted tokens is about 160 of them (at most 200; measured on
  SciFact), so 200 + 40 fits. 40 keeps 89% of SciFact's titles whole (median 27). When the
  chain is too long, the outer headings give way first ("Title › … › Per diem"): the title
  and the innermost section say the most; then the innermost heading is cut to
  PIECE_MAX_TOKENS and the title to what is left, between words, an ellipsis marking cuts.
- A heading equal to the title (a page's <h1> is usually its <title>) or to the heading
  before it is not repeated, and the heading a chunk starts with is in its text already.

The stored chunk is never changed: its text and offsets stay the exact slice of the
document that citations highlight. Which pieces go into the header is the CHUNK_CONTEXT
setting ("title,headings", "title", "headings" or "none"); CHUNK_FORMAT_VERSION names this
format, so an index built with another one can be told apart (connectors.indexing's
embedded_text_fingerprint). This module is plain Python: no Django.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from inference.tokens import approx_token_count

#: Bump whenever the text that is embedded changes for the same document and settings
#: (separator, order, caps, what is deduplicated): every index built before must be rebuilt.
CHUNK_FORMAT_VERSION = 2  # 1: the chunk's text alone

CONTEXT_PARTS = ("title", "headings")
SEPARATOR = " › "
ELLIPSIS = "…"
HEADER_MAX_TOKENS = 40
PIECE_MAX_TOKENS = 16
#: Characters of a heading chain kept with a chunk (Chunk.section, searched as full text).
SECTION_MAX_CHARS = 1000


def context_parts(value: str | Iterable[str]) -> tuple[str, ...]:
    """The header's pieces from a CHUNK_CONTEXT value ("title,headings", "title", "none"...),
    in their fixed order; ValueError naming the accepted values for anything else."""
    items = value.split(",") if isinstance(value, str) else list(value)
    words = [str(item).strip().lower() for item in items if str(item).strip()]
    if words == ["none"]:
        return ()
    unknown = [word for word in words if word not in CONTEXT_PARTS]
    if unknown or not words:
        shown = ",".join(str(item).strip() for item in items) if not isinstance(value, str) else value
        raise ValueError(
            f"must be 'none' or a comma-separated list of {' and '.join(CONTEXT_PARTS)} "
            f"(e.g. title,headings), got {shown!r}"
        )
    return tuple(part for part in CONTEXT_PARTS if part in words)


def context_name(parts: Iterable[str]) -> str:
    """The canonical CHUNK_CONTEXT value of some pieces: "title,headings", "title", "none"."""
    chosen = [part for part in CONTEXT_PARTS if part in set(parts)]
    return ",".join(chosen) or "none"


def heading_chains(headings: Sequence[Sequence], starts: Sequence[int]) -> list[tuple[str, ...]]:
    """For each chunk start (ascending), the headings above it, outermost first.

    `headings` are (offset, level, text) in document order; a heading counts when it begins
    before the chunk does (one the chunk starts with is in the chunk's own text). A heading
    closes every open heading of its level or deeper: h1 › h2 › h3, then an h2 gives h1 › h2.
    """
    offsets = [int(heading[0]) for heading in headings]
    chains: list[tuple[str, ...]] = []
    open_headings: list[tuple[int, str]] = []  # (level, text), outermost first
    taken = 0
    for start in starts:
        upto = bisect_left(offsets, start, lo=taken)
        for _offset, level, text in headings[taken:upto]:
            while open_headings and open_headings[-1][0] >= int(level):
                open_headings.pop()
            open_headings.append((int(level), str(text)))
        taken = max(taken, upto)
        chains.append(tuple(text for _level, text in open_headings))
    return chains


def section_text(chain: Sequence[str]) -> str:
    """The heading chain as stored with a chunk and searched as full text."""
    return SEPARATOR.join(chain)[:SECTION_MAX_CHARS]


def chunk_header(title: str, chain: Sequence[str], parts: Sequence[str]) -> str:
    """The header line for a chunk: the chosen pieces, deduplicated, within HEADER_MAX_TOKENS."""
    pieces: list[str] = []
    seen: set[str] = set()
    candidates = ([title] if "title" in parts else []) + (list(chain) if "headings" in parts else [])
    for piece in candidates:
        piece = " ".join(str(piece).split())
        key = piece.casefold()
        if piece and key not in seen:
            seen.add(key)
            pieces.append(piece)
    return _fit(pieces)


def embedded_text(header: str, text: str) -> str:
    """What the embedding model reads for a chunk: the header, a blank line, the chunk."""
    return f"{header}\n\n{text}" if header else text


def _fit(pieces: list[str]) -> str:
    header = SEPARATOR.join(pieces)
    if approx_token_count(header) <= HEADER_MAX_TOKENS:
        return header
    if len(pieces) > 2:
        # The first piece, an ellipsis for the outer headings left out, and as many of the
        # innermost ones as fit ("Title › … › Abroad › Per diem", then "Title › … › Per diem").
        for keep in range(len(pieces) - 2, 0, -1):
            header = SEPARATOR.join([pieces[0], ELLIPSIS, *pieces[-keep:]])
            if approx_token_count(header) <= HEADER_MAX_TOKENS:
                return header
        pieces = [pieces[0], ELLIPSIS, pieces[-1]]
    if len(pieces) == 1:
        return _clip(pieces[0], HEADER_MAX_TOKENS)
    # Still too long: the innermost piece gets what the others leave, at least PIECE_MAX_TOKENS,
    # and the first piece the rest. (Token counts add up across the separators: no counted
    # piece spans whitespace.)
    others = SEPARATOR.join([pieces[0], *pieces[1:-1], ""])
    last = _clip(pieces[-1], max(PIECE_MAX_TOKENS, HEADER_MAX_TOKENS - approx_token_count(others)))
    tail = SEPARATOR.join([*pieces[1:-1], last])
    room = HEADER_MAX_TOKENS - approx_token_count(SEPARATOR) - approx_token_count(tail)
    return SEPARATOR.join([_clip(pieces[0], room), tail])


def _clip(text: str, max_tokens: int) -> str:
    """`text` cut between words to at most `max_tokens` tokens, an ellipsis marking the cut."""
    if approx_token_count(text) <= max_tokens:
        return text
    kept: list[str] = []
    used = approx_token_count(ELLIPSIS)
    for word in text.split(" "):
        cost = approx_token_count(word)
        if used + cost > max_tokens:
            break
        kept.append(word)
        used += cost
    if not kept:  # one enormous word: cut it by characters (a token covers at most 4)
        return text[: 4 * (max_tokens - 1)] + ELLIPSIS
    return " ".join(kept).rstrip(" ›") + ELLIPSIS
