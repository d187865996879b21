"""Splitting a document's text into overlapping spans that fit the embedding model.

Citations point into the document by character offsets, so every span is an exact
slice: `span.text == text[span.start:span.end]`. Spans end preferably at a paragraph
break, else at the end of a sentence (or line), else between words; a "word" longer
than the limit on its own (a long URL, base64) is cut by characters.

Speed: the text is split into whitespace-separated words, one window of words at a
time. Because the token pieces of `approx_token_count` never cross whitespace, the count
of any run of whole words is the sum of the words' counts, so prefix sums give every
span's count in O(1) and bisection finds each cut in O(log n): linear overall, not
quadratic, and memory bounded by the window. With a chunk cap, cutting stops at the cap.
(A short paragraph cut in two by a window edge may not be recognised as a heading there;
spans stay exact slices within the token limit.)
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate, islice

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


class ChunkLimitExceeded(ValueError):
    """The text needs more than `max_chunks` spans; cutting stopped there."""

    def __init__(self, max_chunks: int):
        self.max_chunks = max_chunks
        super().__init__(f"the text needs more than {max_chunks:,} chunks")


#: Words looked at in one go. Spans are cut window by window, so memory stays bounded by the
#: window and cutting stops as soon as a chunk cap is reached, whatever the text's length.
WINDOW_WORDS = 65_536


def chunk_text(text: str, *, max_tokens: int, overlap_tokens: int, max_chunks: int | None = None) -> list[TextSpan]:
    """Cover `text` with spans of at most `max_tokens` tokens, overlapping by about `overlap_tokens`.

    With `max_chunks`, raises ChunkLimitExceeded as soon as one more span would be needed:
    the spans are counted while they are cut, so a huge text costs no more than the cap.
    """
    spans: list[TextSpan] = []
    for span in iter_chunks(text, max_tokens=max_tokens, overlap_tokens=overlap_tokens):
        if max_chunks is not None and len(spans) >= max_chunks:
            raise ChunkLimitExceeded(max_chunks)
        spans.append(span)
    return spans


def iter_chunks(text: str, *, max_tokens: int, overlap_tokens: int, window_words: int = WINDOW_WORDS):
    """The spans of `chunk_text`, one at a time, reading the text one window of words at a time."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and smaller than max_tokens")
    # A span never holds more than max_tokens words (every word is at least one token): the
    # window keeps room for a few whole spans past where one starts.
    window_words = max(window_words, 4 * (max_tokens + 2))
    position, previous_last = 0, -1
    while True:
        window = _Window(text, position, window_words, max_tokens)
        if not window.count:
            return
        first = yield from _cut_window(window, text, max_tokens, overlap_tokens, previous_last)
        if first is None:
            return
        # The next window starts at the next span's first word, which the last span may overlap.
        previous_last = window.previous_last - first
        position = window.starts[first]


class _Window:
    """Up to `size` words of `text` from `position`: their offsets and token prefix sums."""

    def __init__(self, text: str, position: int, size: int, max_tokens: int):
        self.starts: list[int] = []
        self.ends: list[int] = []
        counts: list[int] = []
        longest = 4 * max_tokens  # a token covers at most four characters
        for match in islice(_WORD.finditer(text, position), size):
            start, end = match.span()
            self.starts.append(start)
            self.ends.append(end)
            # A word longer than this has more than max_tokens tokens: it is cut by characters
            # anyway, so its exact count (a pass over megabytes) is never needed.
            counts.append(approx_token_count(match.group()) if end - start <= longest else end - start)
        self.count = len(self.starts)
        self.final = self.count < size or _WORD.search(text, self.ends[-1]) is None
        # prefix[i] = tokens in words[0:i]
        self.prefix = [0, *accumulate(counts)]
        self.previous_last = -1


def _cut_window(window: _Window, text: str, max_tokens: int, overlap_tokens: int, previous_last: int):
    """Yield the window's spans; return the word where the next window starts (None: the end)."""
    starts, ends, prefix, count = window.starts, window.ends, window.prefix, window.count
    paragraph_ends, sentence_ends = _boundaries(text, starts, ends)
    # Words that begin a sentence: where an overlap may start.
    sentence_starts = [k + 1 for k in sentence_ends]
    # In a window that is not the last, a span must end (and its gap be seen) inside it.
    last_safe_first = count - 1 if window.final else count - 2 - max_tokens

    def furthest(first: int) -> int:
        """The last word a span starting at `first` can include (first - 1 if none fits)."""
        return bisect_right(prefix, prefix[first] + max_tokens) - 2

    first = 0
    while first < count:
        if first > last_safe_first:
            window.previous_last = previous_last
            return first
        last = furthest(first)
        if last < first:
            # One word longer than the limit: cut it by characters, then go on without overlap.
            yield from _split_word(text, starts[first], ends[first], max_tokens)
            previous_last = first
            first += 1
            continue
        if last < count - 1:
            lowest = max(first, previous_last + 1)  # each span must reach past the one before
            last = _best_cut(lowest, first, last, prefix, max_tokens, paragraph_ends, sentence_ends)
        start, end = starts[first], ends[last]
        yield TextSpan(start=start, end=end, text=text[start:end], token_count=prefix[last + 1] - prefix[first])
        if last == count - 1 and window.final:
            return None
        previous_last = last
        first = _overlap_start(first, last, prefix, overlap_tokens, sentence_starts)
        if furthest(first) <= previous_last:
            first = previous_last + 1  # the overlap leaves no room for new text: drop it
    return None


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


def _split_word(text: str, start: int, end: int, max_tokens: int):
    """Cut one overlong run of non-space characters into pieces of at most max_tokens tokens."""
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
        yield TextSpan(start=start, end=low, text=piece, token_count=approx_token_count(piece))
        start = low
