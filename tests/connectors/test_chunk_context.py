"""The header a chunk is embedded with: its pieces, its cap, the heading chain, the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors import chunk_context
from connectors.chunk_context import (
    HEADER_MAX_TOKENS, chunk_header, context_name, context_parts, embedded_text, heading_chains,
)
from connectors.indexing import embedded_text_fingerprint
from inference.tokens import approx_token_count

ROOT = Path(__file__).resolve().parents[2]
BOTH = ("title", "headings")
HEADINGS = [(0, 1, "Travel policy"), (40, 2, "Abroad"), (90, 3, "Per diem"), (150, 2, "At home"), (200, 1, "Annex")]


def test_a_chunk_gets_the_headings_above_its_start_by_level():
    chains = heading_chains(HEADINGS, [0, 40, 60, 100, 160, 210])
    assert chains == [
        (),  # starts with the first heading: it is in the chunk's own text
        ("Travel policy",),
        ("Travel policy", "Abroad"),
        ("Travel policy", "Abroad", "Per diem"),
        ("Travel policy", "At home"),  # an h2 closes the h2 and h3 before it
        ("Annex",),
    ]


def test_the_header_is_title_then_sections_as_a_breadcrumb():
    assert chunk_header("Expenses handbook", ("Travel policy", "Abroad"), BOTH) == (
        "Expenses handbook › Travel policy › Abroad"
    )
    assert embedded_text("Expenses handbook › Abroad", "Employees get 45 EUR a day.") == (
        "Expenses handbook › Abroad\n\nEmployees get 45 EUR a day."
    )


def test_each_piece_can_be_left_out():
    chain = ("Travel policy", "Abroad")
    assert chunk_header("Handbook", chain, ("title",)) == "Handbook"
    assert chunk_header("Handbook", chain, ("headings",)) == "Travel policy › Abroad"
    assert chunk_header("Handbook", chain, ()) == ""
    assert embedded_text("", "The chunk.") == "The chunk."


def test_a_heading_that_repeats_the_title_is_not_repeated():
    # A web page's <h1> is usually its <title>.
    assert chunk_header("Travel policy", ("Travel  policy", "Abroad"), BOTH) == "Travel policy › Abroad"


def test_a_long_chain_keeps_the_title_and_the_innermost_sections_within_the_cap():
    chain = tuple(f"Section {n} on reimbursement of international travel costs" for n in range(1, 7))
    header = chunk_header("Northwind Robotics employee handbook", chain, BOTH)
    assert approx_token_count(header) <= HEADER_MAX_TOKENS
    assert header.startswith("Northwind Robotics employee handbook › … › ")
    assert header.endswith("Section 6 on reimbursement of international travel costs")


def test_an_enormous_title_or_heading_is_cut_between_words_with_an_ellipsis():
    header = chunk_header("word " * 500, ("heading " * 300,), BOTH)
    assert approx_token_count(header) <= HEADER_MAX_TOKENS
    title, heading = header.split(" › ")
    assert title.endswith("word…") and heading.endswith("heading…")
    one_word = chunk_header("x" * 10_000, (), BOTH)
    assert approx_token_count(one_word) <= HEADER_MAX_TOKENS and one_word.endswith("…")


@pytest.mark.parametrize(
    ("value", "parts"),
    [("title,headings", BOTH), ("headings, title", BOTH), ("TITLE", ("title",)), ("headings", ("headings",)),
     ("none", ())],
)
def test_the_setting_names_the_pieces(value, parts):
    assert context_parts(value) == parts
    assert context_parts(context_name(parts)) == parts


@pytest.mark.parametrize("value", ["titles", "title,none", "", ",", "body"])
def test_a_bad_setting_is_refused_with_the_accepted_values(value):
    with pytest.raises(ValueError, match="'none' or a comma-separated list of title and headings"):
        context_parts(value)


def test_a_bad_setting_stops_start_up_naming_the_variable():
    env = {**os.environ, "CHUNK_CONTEXT": "title,sections", "SECRET_KEY": "test-only-secret", "DEBUG": "false"}
    finished = subprocess.run(
        [sys.executable, "-c", "import assistant.settings"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "ImproperlyConfigured: CHUNK_CONTEXT must be 'none' or a comma-separated list of title and headings" in (
        finished.stderr
    )
    assert "'title,sections'" in finished.stderr


def test_the_embedded_text_fingerprint_changes_with_what_is_embedded(settings, monkeypatch):
    settings.CHUNK_CONTEXT, settings.CHUNK_TOKENS, settings.CHUNK_OVERLAP_TOKENS = "title,headings", 200, 30
    both = embedded_text_fingerprint()
    assert both == f"chunks-v{chunk_context.CHUNK_FORMAT_VERSION} context=title,headings tokens=200 overlap=30"
    settings.CHUNK_CONTEXT = "none"
    assert embedded_text_fingerprint() != both
    settings.CHUNK_CONTEXT = "title,headings"
    settings.CHUNK_TOKENS = 300
    assert embedded_text_fingerprint() != both
    settings.CHUNK_TOKENS = 200
    monkeypatch.setattr("connectors.indexing.CHUNK_FORMAT_VERSION", chunk_context.CHUNK_FORMAT_VERSION + 1)
    assert embedded_text_fingerprint() != both
