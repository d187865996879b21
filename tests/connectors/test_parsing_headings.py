"""Parsers report the file's headings (level, offset into the extracted text) and leave the
text exactly as before: citations point into that text."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from connectors.parsing import parse_document
from connectors.parsing.common import MAX_HEADINGS, Heading, locate_headings, normalize_text
from connectors.parsing.html import parse_html

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"


def outline(parsed) -> list[tuple[int, str]]:
    """(level, text) of each heading, after checking that the line at its offset holds it (a
    Markdown heading's line starts with its # marks)."""
    for heading in parsed.headings:
        line_end = parsed.text.find("\n", heading.offset)
        assert heading.text in parsed.text[heading.offset : line_end if line_end >= 0 else None], heading
        assert heading.offset == 0 or parsed.text[heading.offset - 1] == "\n", heading
    assert [h.offset for h in parsed.headings] == sorted(h.offset for h in parsed.headings)
    return [(h.level, h.text) for h in parsed.headings]


def test_html_headings_h1_to_h6_with_their_levels():
    page = b"""<html><head><title>Travel</title><style>h1{}</style></head><body>
        <nav><h2>Site menu</h2></nav>
        <h1>Travel   policy</h1><p>Who may travel.</p>
        <section><h2>Abroad <code>trips</code></h2><div><p>Per day.</p></div>
        <h3>Per&nbsp;diem</h3><p>45 EUR</p></section>
        <h6>Small print</h6><p>Fine.</p></body></html>"""
    parsed = parse_document(page, filename="travel.html")
    assert outline(parsed) == [(1, "Travel policy"), (2, "Abroad trips"), (3, "Per diem"), (6, "Small print")]
    for heading in parsed.headings:  # HTML headings start exactly at their text
        assert parsed.text[heading.offset : heading.offset + len(heading.text)] == heading.text
    assert parsed.text.startswith("Travel policy\n\nWho may travel.")


def test_the_demo_html_page_keeps_its_text_and_gains_its_headings():
    content = (SAMPLES / "it-security-policy.html").read_bytes()
    parsed = parse_document(content, filename="it-security-policy.html")
    assert (2, "2. VPN and networks") in outline(parsed)
    assert "\n\n2. VPN and networks\n\n" in parsed.text


def test_markdown_headings_atx_and_underlined_outside_code():
    text = (
        "# Employee handbook\n\nIntro.\n\n## Leave ##\n\nDays.\n\nTravel\n------\n\n"
        "```\n# a shell comment, not a heading\n```\n\n- a list item\n---\n\nOvertime\n========\n\n#### Deep\nx\n"
    )
    parsed = parse_document(text.encode(), filename="handbook.md")
    assert parsed.text == normalize_text(text, keep_indent=True)
    assert outline(parsed) == [(1, "Employee handbook"), (2, "Leave"), (2, "Travel"), (1, "Overtime"), (4, "Deep")]
    assert parsed.text[parsed.headings[1].offset :].startswith("## Leave ##")


def test_plain_text_has_no_headings():
    assert parse_document(b"# not markdown\n\ntext", filename="notes.txt").headings == ()


def test_word_heading_styles_give_levels():
    document = docx.Document()
    document.add_heading("Onboarding", 0)  # the Title style: the title, not a heading
    document.add_heading("First week", 1)
    document.add_paragraph("Meet   your buddy.")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Laptop", "Day 1"
    document.add_heading("Accounts", 2)
    document.add_paragraph("Request VPN access.")
    buffer = io.BytesIO()
    document.save(buffer)
    parsed = parse_document(buffer.getvalue(), filename="onboarding.docx")
    assert parsed.text == (
        "Onboarding\n\nFirst week\n\nMeet your buddy.\n\nLaptop | Day 1\n\nAccounts\n\nRequest VPN access."
    )
    assert parsed.title == "Onboarding"
    assert outline(parsed) == [(1, "First week"), (2, "Accounts")]


def test_pdf_bookmarks_give_headings_at_their_title_on_their_page():
    reader = PdfReader(SAMPLES / "travel-policy.pdf")
    writer = PdfWriter()
    writer.append(reader)
    top = writer.add_outline_item(title="Northwind Robotics Travel Policy", page_number=0)
    writer.add_outline_item(title="1. Approval and booking", page_number=0, parent=top)
    writer.add_outline_item(title="Reimbursement", page_number=1, parent=top)  # not a line of the text
    buffer = io.BytesIO()
    writer.write(buffer)
    plain = parse_document((SAMPLES / "travel-policy.pdf").read_bytes(), filename="travel-policy.pdf")
    parsed = parse_document(buffer.getvalue(), filename="travel-policy.pdf")
    assert parsed.text == plain.text and plain.headings == ()
    levels = [(h.level, h.text) for h in parsed.headings]
    assert levels == [(1, "Northwind Robotics Travel Policy"), (2, "1. Approval and booking"), (2, "Reimbursement")]
    approval = parsed.headings[1]
    assert parsed.text[approval.offset :].startswith("1. Approval and booking")
    second_page = reader.pages[1].extract_text().split()[0]
    assert parsed.text[parsed.headings[2].offset :].startswith(second_page)  # its page's start


@pytest.mark.parametrize("sample", ["employee-handbook.md", "it-security-policy.html", "onboarding-checklist.docx"])
def test_every_demo_heading_sits_at_its_offset(sample):
    parsed = parse_document((SAMPLES / sample).read_bytes(), filename=sample)
    assert outline(parsed)


def test_a_heading_the_text_renders_differently_is_left_out_not_misplaced():
    raw = "Intro\n\nTitle A\n\nBody\n\nTitle B\n\nMore"
    text = normalize_text(raw)
    marks = [(7, 14, 1), (22, 29, 2)]
    assert locate_headings(raw, text, marks) == (Heading(7, 1, "Title A"), Heading(22, 2, "Title B"))
    assert locate_headings(raw, text.replace("Title B", "Other"), marks) == (Heading(7, 1, "Title A"),)


def test_a_page_of_thousands_of_headings_keeps_a_bounded_number():
    parts = b"".join(b"<h2>Part %d</h2><p>text %d</p>" % (n, n) for n in range(MAX_HEADINGS + 500))
    page = b"<html><body>" + parts + b"</body></html>"
    parsed = parse_html(page)
    assert len(parsed.headings) == MAX_HEADINGS
    assert parsed.headings[-1].text == f"Part {MAX_HEADINGS - 1}"
