"""Splitting a document's text into overlapping spans that fit the embedding model.

Citations point into the document by character offsets, so every span is an exact
slice: `span.text == text[span.start:span.end]`. Spans end preferably at a paragraph
break, else at the end of a sentence (or line), else between words; a "word" longer
than the limit on its own (a long URL, base64) is cut by characters.

Speed: the text is split once into whitespace-separated words. Because the token
pieces of `approx_token_count` never cross whitespace, the count of any run of whole
words is the sum of the words' counts, so prefix sums give every span's count in O(1)
and bisection finds each cut in O(log n): linear overall, not quadratic.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate

from inference.tokens import approx_token_count


@dataclass(frozen=True)
class TextSpan:
    start: int
    end: int
    text: str
    token_count: int


_WORD = re.compile(r"\S+")
# The end of a sentence: terminal punctuation, maybe followed by closing quotes or brackets.
_TERMINALS = ".!?…:;"
_CLOSERS = "\"'”’)]"
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
# A paragraph of at most this many words without a final full stop reads as a heading:
# it belongs with the text after it, so no span ends right after it.
_HEADING_WORDS = 12

# Strength of the gap after a word: where a span may end.
_WORD_GAP, _SENTENCE_GAP, _PARAGRAPH_GAP = 1, 2, 3


def chunk_text(text: str, *, max_tokens: int, overlap_tokens: int) -> list[TextSpan]:
    """Cover `text` with spans of at most `max_tokens` tokens, overlapping by about `overlap_tokens`."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and smaller than max_tokens")

    matches = list(_WORD.finditer(text))
    starts = [match.start() for match in matches]
    ends = [match.end() for match in matches]
    # prefix[i] = tokens in words[0:i]
    prefix = [0, *accumulate(map(approx_token_count, [match.group() for match in matches]))]
    del matches  # half a million match objects for a long manual: free them early
    count = len(starts)
    if not count:
        return []
    paragraph_ends, sentence_ends = _boundaries(text, starts, ends)
    # Words that begin a sentence: where an overlap may start.
    sentence_starts = [k + 1 for k in sentence_ends]

    def tokens(first: int, last: int) -> int:  # words first..last inclusive
        return prefix[last + 1] - prefix[first]

    def furthest(first: int) -> int:
        """The last word a span starting at `first` can include (first - 1 if none fits)."""
        return bisect_right(prefix, prefix[first] + max_tokens) - 2

    def make(first: int, last: int) -> TextSpan:
        start, end = starts[first], ends[last]
        return TextSpan(start=start, end=end, text=text[start:end], token_count=tokens(first, last))

    spans: list[TextSpan] = []
    first = 0
    previous_last = -1
    while first < count:
        last = furthest(first)
        if last < first:
            # One word longer than the limit: cut it by characters, then go on without overlap.
            spans.extend(_split_word(text, starts[first], ends[first], max_tokens))
            previous_last = first
            first += 1
            continue
        if last < count - 1:
            lowest = max(first, previous_last + 1)  # each span must reach past the one before
            last = _best_cut(lowest, first, last, prefix, max_tokens, paragraph_ends, sentence_ends)
        spans.append(make(first, last))
        if last == count - 1:
            break
        previous_last = last
        first = _overlap_start(first, last, prefix, overlap_tokens, sentence_starts)
        if furthest(first) <= previous_last:
            first = previous_last + 1  # the overlap leaves no room for new text: drop it
    return spans


def _boundaries(text: str, starts: list[int], ends: list[int]) -> tuple[list[int], list[int]]:
    """Indices of words followed by a paragraph break, and by a sentence (or line) end."""
    paragraph_ends: list[int] = []
    sentence_ends: list[int] = []
    paragraph_first = 0  # first word of the current paragraph
    paragraph_lines = 1
    for k in range(len(starts) - 1):
        gap_start, gap_end = ends[k], starts[k + 1]
        # Most gaps are one space: skip the newline search for them.
        newlines = 0 if gap_end - gap_start == 1 and text[gap_start] == " " else text.count("\n", gap_start, gap_end)
        strength = _WORD_GAP
        if newlines >= 2 and _BLANK_LINE.search(text, gap_start, gap_end):
            strength = _PARAGRAPH_GAP
            if paragraph_lines == 1 and k - paragraph_first < _HEADING_WORDS and not _ends_sentence(text, ends[k]):
                strength = _SENTENCE_GAP  # a heading: keep it with the text after it
            paragraph_first, paragraph_lines = k + 1, 1
        elif newlines:
            strength = _SENTENCE_GAP
            paragraph_lines += 1
        elif _ends_sentence(text, ends[k]):
            strength = _SENTENCE_GAP
        if strength == _PARAGRAPH_GAP:
            paragraph_ends.append(k)
        if strength >= _SENTENCE_GAP:
            sentence_ends.append(k)
    return paragraph_ends, sentence_ends


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the word ending at `end` ends a sentence ("shelf.", "(see above).", 'said."')."""
    end -= 1
    while end > 0 and text[end] in _CLOSERS:
        end -= 1
    return text[end] in _TERMINALS


def _best_cut(
    lowest: int,
    first: int,
    last: int,
    prefix: list[int],
    max_tokens: int,
    paragraph_ends: list[int],
    sentence_ends: list[int],
) -> int:
    """The word to end a span on, within lowest..last: the last paragraph end, else the last
    sentence end, as long as the span stays at least half full; else `last` (between words)."""
    # The earliest word at which the span holds half of max_tokens.
    half = bisect_left(prefix, prefix[first] + (max_tokens + 1) // 2) - 1
    lowest = max(lowest, half)
    for candidates in (paragraph_ends, sentence_ends):
        index = bisect_right(candidates, last) - 1
        if index >= 0 and candidates[index] >= lowest:
            return candidates[index]
    return last


def _overlap_start(first: int, last: int, prefix: list[int], overlap_tokens: int, sentence_starts: list[int]) -> int:
    """Where the next span starts: inside the previous one, about overlap_tokens before its end,
    at a sentence start when one gives at least half that overlap, else at a word."""
    if overlap_tokens == 0:
        return last + 1
    # The earliest word from which the rest of the span has at most overlap_tokens tokens.
    word = bisect_left(prefix, prefix[last + 1] - overlap_tokens)
    index = bisect_left(sentence_starts, word)
    if index < len(sentence_starts):
        sentence = sentence_starts[index]
        if sentence <= last and prefix[last + 1] - prefix[sentence] >= overlap_tokens / 2:
            word = sentence
    return max(word, first + 1)


def _split_word(text: str, start: int, end: int, max_tokens: int) -> list[TextSpan]:
    """Cut one overlong run of non-space characters into pieces of at most max_tokens tokens."""
    pieces = []
    while start < end:
        # A token covers at most four characters, so no piece is longer than 4 * max_tokens.
        low, high = start + 1, min(end, start + 4 * max_tokens)
        while low < high:  # the longest piece within the limit; counts grow with length
            middle = (low + high + 1) // 2
            if approx_token_count(text[start:middle]) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        piece = text[start:low]
        pieces.append(TextSpan(start=start, end=low, text=piece, token_count=approx_token_count(piece)))
        start = low
    return pieces
