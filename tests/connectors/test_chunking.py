"""Chunking: spans are exact slices (citations use their offsets), fit the limit, and overlap."""

from __future__ import annotations

import random
import time
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.chunking import TextSpan, chunk_text
from connectors.parsing import parse_document
from inference.tokens import approx_token_count

HANDBOOK = Path(__file__).resolve().parents[2] / "samples" / "handbook" / "employee-handbook.md"


def assert_valid_spans(text: str, spans: list[TextSpan], max_tokens: int) -> None:
    """Exact slices within the limit, in order, without edge whitespace, covering all the text."""
    assert spans, "non-blank text gives at least one span"
    for span in spans:
        assert span.text == text[span.start : span.end]
        assert span.token_count == approx_token_count(span.text) <= max_tokens
        assert span.text and span.text == span.text.strip()
    for previous, span in pairwise(spans):
        assert previous.start < span.start and previous.end < span.end
        assert not text[previous.end : span.start].strip(), "no text is left out between spans"
    assert not text[: spans[0].start].strip() and not text[spans[-1].end :].strip()


def handbook_text() -> str:
    return parse_document(HANDBOOK.read_bytes(), filename=HANDBOOK.name).text


def generated_manual(size: int, seed: int = 7) -> str:
    """Prose in headed sections, like a long product manual."""
    rng = random.Random(seed)
    vocabulary = (
        "the robot gripper aisle shelf battery charging dock firmware operator must should check "
        "replace calibrate sensor lidar warehouse picks per hour safety zone emergency stop "
        "maintenance interval torque 1.2 m/s 10:00 e.g. ATL-2291 NG-7"
    ).split()
    parts: list[str] = []
    length = 0
    section = 0
    while length < size:
        if rng.random() < 0.15:
            section += 1
            parts.append(f"## {section}. Maintenance of module {section}")
        sentences = [
            " ".join(rng.choice(vocabulary) for _ in range(rng.randint(4, 28))).capitalize() + rng.choice(".!?.")
            for _ in range(rng.randint(1, 9))
        ]
        parts.append(" ".join(sentences))
        length += len(parts[-1]) + 2
    return "\n\n".join(parts)


def test_blank_text_gives_no_spans():
    assert chunk_text("", max_tokens=50, overlap_tokens=5) == []
    assert chunk_text(" \n\n\t ", max_tokens=50, overlap_tokens=5) == []


def test_short_text_is_one_span_without_edge_whitespace():
    text = "\n\n  Leave is booked in Harbor.  \n"
    [span] = chunk_text(text, max_tokens=50, overlap_tokens=5)
    assert span == TextSpan(
        start=4, end=30, text="Leave is booked in Harbor.", token_count=approx_token_count("Leave is booked in Harbor.")
    )


@pytest.mark.parametrize(("max_tokens", "overlap_tokens"), [(200, 30), (64, 16), (40, 0)])
def test_handbook_spans_are_exact_and_within_the_limit(max_tokens, overlap_tokens):
    text = handbook_text()
    spans = chunk_text(text, max_tokens=max_tokens, overlap_tokens=overlap_tokens)
    assert len(spans) > 3
    assert_valid_spans(text, spans, max_tokens)


def test_consecutive_spans_overlap_by_about_the_overlap():
    text = handbook_text()
    spans = chunk_text(text, max_tokens=120, overlap_tokens=30)
    overlaps = [approx_token_count(text[span.start : previous.end]) for previous, span in pairwise(spans)]
    assert all(0 < overlap <= 30 for overlap in overlaps), overlaps
    assert sum(overlaps) / len(overlaps) >= 15


def test_without_overlap_spans_do_not_share_text():
    text = handbook_text()
    spans = chunk_text(text, max_tokens=60, overlap_tokens=0)
    assert all(previous.end < span.start for previous, span in pairwise(spans))


def test_spans_end_at_paragraph_breaks_when_paragraphs_fit():
    paragraphs = [f"Paragraph {n} says something. " + "It has more words in it. " * 6 for n in range(30)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    spans = chunk_text(text, max_tokens=120, overlap_tokens=0)
    assert len(spans) > 5
    for span in spans:
        assert text[span.end : span.end + 2] in ("\n\n", "")
        assert span.start == 0 or text[span.start - 2 : span.start] == "\n\n"


def test_spans_end_at_sentence_ends_inside_a_long_paragraph():
    text = " ".join(f"Sentence number {n} is about robots and shelves." for n in range(200))  # 14 tokens each
    spans = chunk_text(text, max_tokens=60, overlap_tokens=20)
    assert_valid_spans(text, spans, 60)
    assert all(span.text.endswith(".") for span in spans)
    assert all(span.text.startswith("Sentence") for span in spans)  # overlaps start at sentences too


def test_a_heading_is_kept_with_the_text_after_it():
    text = handbook_text()
    spans = chunk_text(text, max_tokens=100, overlap_tokens=20)
    for span in spans[:-1]:
        last_line = span.text.rsplit("\n", 1)[-1]
        assert not last_line.startswith("#"), span.text


def test_a_word_longer_than_the_limit_is_cut_by_characters():
    blob = "QmFzZTY0" * 1000
    text = f"Before the blob.\n\n{blob}\n\nAfter the blob."
    spans = chunk_text(text, max_tokens=50, overlap_tokens=10)
    assert_valid_spans(text, spans, 50)
    inside = [span for span in spans if text.index(blob) <= span.start < text.index(blob) + len(blob)]
    assert "".join(span.text for span in inside) == blob
    assert spans[-1].text == "After the blob."


def test_a_long_run_of_punctuation_is_cut_too():
    text = "Table:\n" + "-" * 500 + "\nEnd."
    spans = chunk_text(text, max_tokens=64, overlap_tokens=8)
    assert_valid_spans(text, spans, 64)


def test_it_rejects_overlap_not_smaller_than_the_limit():
    with pytest.raises(ValueError):
        chunk_text("text", max_tokens=10, overlap_tokens=10)
    with pytest.raises(ValueError):
        chunk_text("text", max_tokens=0, overlap_tokens=0)


def test_a_thousand_page_manual_is_chunked_in_seconds():
    text = generated_manual(3_000_000)
    started = time.perf_counter()
    spans = chunk_text(text, max_tokens=200, overlap_tokens=30)
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"chunking 3 MB took {elapsed:.1f}s"
    assert_valid_spans(text, spans, 200)
    assert sum(span.token_count for span in spans) / len(spans) > 120  # spans are well filled


_ALPHABET = st.sampled_from(list("abcdefghij ABC.,;:!?\n\n  \t-–é1234567890#") + ["verylongwordwithoutspaces" * 3])


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(_ALPHABET, max_size=400).map("".join),
    max_tokens=st.integers(min_value=1, max_value=40),
    overlap_share=st.floats(min_value=0, max_value=0.9),
)
def test_any_text_gives_valid_spans(text, max_tokens, overlap_share):
    overlap_tokens = min(int(max_tokens * overlap_share), max_tokens - 1)
    spans = chunk_text(text, max_tokens=max_tokens, overlap_tokens=overlap_tokens)
    if text.strip():
        assert_valid_spans(text, spans, max_tokens)
    else:
        assert spans == []
