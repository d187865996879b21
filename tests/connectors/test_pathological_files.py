"""Files shaped to make parsing and chunking blow up: one huge line, millions of columns,
one enormous cell, endless tiny lines, thousands of table cells.

What a user notices: such a file is read (or refused with the reason) in bounded work, and
the limits stop the parser and the chunker as they go. These tests count work, not seconds
(timings are in bench/parse_pathological.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors import chunking
from connectors.chunking import ChunkLimitExceeded, chunk_text
from connectors.parsing import ParseError, ParseLimits, parse_document
from connectors.parsing import csv as csv_parser

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


@pytest.fixture
def counted_words(monkeypatch):
    """How many words the chunker has counted tokens of (its work grows with it)."""
    calls = {"n": 0}
    real = chunking.approx_token_count

    def counting(text: str) -> int:
        calls["n"] += 1
        return real(text)

    monkeypatch.setattr(chunking, "approx_token_count", counting)
    return calls


def test_a_4mb_csv_of_a_commas_parses_under_the_caps_and_its_chunks_are_bounded(counted_words):
    content = b"a," * (2 * MB)  # the reported file: one line of two million empty-named columns
    text = parse_document(content, filename="columns.csv", isolate=False).text
    assert text.startswith("a | a | a") and len(text) < ParseLimits().max_chars
    with pytest.raises(ChunkLimitExceeded) as stopped:
        chunk_text(text, max_tokens=200, overlap_tokens=30, max_chunks=100)
    assert stopped.value.max_chunks == 100 and "100 chunks" in str(stopped.value)
    # Cutting stopped at the cap: it looked at about one window of words, not the 4 million.
    assert counted_words["n"] <= chunking.WINDOW_WORDS + 100


def test_chunks_under_the_cap_are_all_returned_and_the_cap_is_exact():
    text = " ".join(f"word{i}." for i in range(3000))
    spans = chunk_text(text, max_tokens=50, overlap_tokens=0)
    assert chunk_text(text, max_tokens=50, overlap_tokens=0, max_chunks=len(spans)) == spans
    with pytest.raises(ChunkLimitExceeded):
        chunk_text(text, max_tokens=50, overlap_tokens=0, max_chunks=len(spans) - 1)


def test_spans_across_window_edges_are_the_same_as_in_one_window():
    words = ["Alpha", "beta.", "gamma\n", "x" * 900, "delta\n\n", "Eps", "(see)."]
    text = " ".join(words[(i * 7919) % len(words)] for i in range(20_000))
    whole = list(chunking.iter_chunks(text, max_tokens=64, overlap_tokens=8, window_words=10**9))
    windowed = list(chunking.iter_chunks(text, max_tokens=64, overlap_tokens=8, window_words=1000))
    assert windowed == whole
    assert all(span.text == text[span.start : span.end] and span.token_count <= 64 for span in windowed)


def test_one_huge_word_is_cut_lazily_and_stops_at_the_cap():
    text = "x" * (8 * MB)  # a long line without spaces (base64, minified data)
    with pytest.raises(ChunkLimitExceeded):
        chunk_text(text, max_tokens=200, overlap_tokens=30, max_chunks=10)
    [first, *_] = chunking.iter_chunks(text, max_tokens=200, overlap_tokens=30)
    assert first.start == 0 and first.token_count <= 200


def test_the_csv_parser_stops_at_the_character_cap_while_reading_rows(monkeypatch):
    rows = {"n": 0}
    real = csv_parser._block

    def counting(header, row):
        rows["n"] += 1
        return real(header, row)

    monkeypatch.setattr(csv_parser, "_block", counting)
    content = b"name,team\n" + b"Ada,Robotics\n" * 500_000
    with pytest.raises(ParseError) as refused:
        parse_document(content, filename="people.csv", isolate=False, limits=ParseLimits(max_chars=10_000))
    assert "more than 10,000 characters" in str(refused.value) and "PARSE_MAX_CHARS" in str(refused.value)
    assert rows["n"] < 1_000  # stopped at the cap, not after half a million rows


def test_a_csv_with_one_huge_cell_is_read_up_to_the_cap():
    cell = "word " * 100_000  # 500 KB in one quoted cell: over the csv module's default field limit
    content = f'notes\n"{cell}"\nshort\n'.encode()
    text = parse_document(content, filename="notes.csv", isolate=False).text
    assert text.startswith("notes: word word") and text.endswith("notes: short")
    with pytest.raises(ParseError, match="PARSE_MAX_CHARS"):  # never "field larger than field limit"
        parse_document(content, filename="notes.csv", isolate=False, limits=ParseLimits(max_chars=100_000))


def test_millions_of_empty_lines_give_no_text():
    assert parse_document(b"\n" * (4 * MB), filename="blank.csv", isolate=False).text == ""


def test_many_columns_keep_their_header_names():
    header = ",".join(f"c{i}" for i in range(5000))
    row = ",".join(str(i) for i in range(5000))
    text = parse_document(f"{header}\n{row}\n".encode(), filename="wide.csv", isolate=False).text
    lines = text.split("\n")
    assert len(lines) == 5000 and lines[0] == "c0: 0" and lines[-1] == "c4999: 4999"


def test_a_table_row_of_many_cells_renders_and_the_html_parser_stops_at_the_cap():
    page = b"<table><tr>" + b"<td>a</td>" * 20_000 + b"</tr></table>"
    text = parse_document(page, filename="wide.html", isolate=False).text
    assert text == " | ".join(["a"] * 20_000)
    with pytest.raises(ParseError, match="PARSE_MAX_CHARS"):
        parse_document(page, filename="wide.html", isolate=False, limits=ParseLimits(max_chars=5_000))


def test_text_over_the_cap_is_refused_before_clean_up():
    with pytest.raises(ParseError, match="more than 1,000 characters"):
        parse_document(b"a\n" * 1000, filename="notes.txt", isolate=False, limits=ParseLimits(max_chars=1000))


def test_the_caps_are_enforced_in_the_child_process_too():
    with pytest.raises(ParseError, match="PARSE_MAX_CHARS"):
        parse_document(b"a," * MB, filename="wide.csv", isolate=True, limits=ParseLimits(max_chars=1000))


def test_the_parsing_package_imports_no_django():
    """Limits reach the parsers as plain values; the package works outside Django."""
    code = "import sys, connectors.parsing; bad = [m for m in sys.modules if m.split('.')[0] == 'django']; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for module in (ROOT / "connectors" / "parsing").glob("*.py"):  # not even lazily, inside a function
        source = module.read_text()
        assert "from django" not in source and "import django" not in source, module.name


def test_a_cancel_stops_a_file_being_read_in_its_child_process():
    """The sync asks once a second whether it was cancelled; the parser child is killed then."""
    import time

    from connectors.parsing import ParseCancelled
    from connectors.parsing.limits import run_limited

    started = time.monotonic()
    with pytest.raises(ParseCancelled):
        run_limited(time.sleep, 30, timeout=60, cancelled=lambda: time.monotonic() - started > 1)
    assert time.monotonic() - started < 10
    assert run_limited(sum, [1, 2], cancelled=lambda: False) == 3
