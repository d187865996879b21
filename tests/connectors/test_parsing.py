"""Parsing: what an admin sees when files of each type are indexed (plain tests, no database)."""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfWriter

from connectors.parsing import SUPPORTED_EXTENSIONS, ParsedText, ParseError, media_type_for, parse_document

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"


def parse_sample(name: str) -> ParsedText:
    return parse_document((SAMPLES / name).read_bytes(), filename=name)


# --- the demo documents, one per format ------------------------------------------------------


def test_it_reads_the_markdown_handbook_with_its_heading_as_title():
    parsed = parse_sample("employee-handbook.md")
    assert parsed.title == "Northwind Robotics Employee Handbook"
    assert "27 days of paid annual leave" in parsed.text
    assert "## Parental leave" in parsed.text  # markdown is kept as written


def test_it_reads_the_html_policy_without_scripts_styles_or_navigation():
    parsed = parse_sample("it-security-policy.html")
    assert parsed.title == "IT Security Policy – Northwind Robotics"
    assert "security@northwind-robotics.example" in parsed.text
    assert "at least 14 characters long" in parsed.text
    for hidden in ("intranetTracking", "font-family", "Intranet home", "needs JavaScript"):
        assert hidden not in parsed.text
    assert "\n\n2. VPN and networks\n\n" in parsed.text  # headings on their own lines
    assert "Public | Press releases, product brochures | No restrictions" in parsed.text


def test_it_reads_the_pdf_travel_policy_with_its_metadata_title():
    parsed = parse_sample("travel-policy.pdf")
    assert parsed.title == "Northwind Robotics Travel Policy"
    assert "TripNest" in parsed.text
    assert "Germany: EUR 28 per full day, EUR 14 per partial day." in parsed.text
    assert "\n\n" in parsed.text  # the two pages are separated by a blank line


def test_it_reads_the_docx_checklist_with_table_rows_as_lines():
    parsed = parse_sample("onboarding-checklist.docx")
    assert parsed.title == "Onboarding Checklist for New Employees"
    assert "Buddies meet new employees for lunch in the first week" in parsed.text
    assert (
        "\nDay 1 | Welcome session at 09:30 in the Lighthouse room (Hamburg, 3rd floor) | People team\n" in parsed.text
    )


def test_it_reads_the_csv_rows_as_header_value_lines():
    parsed = parse_sample("office-locations.csv")
    assert parsed.title is None
    rows = parsed.text.split("\n\n")
    lyon = next(row for row in rows if "city: Lyon" in row)
    assert "site_lead: Claire Dubois" in lyon.split("\n")
    assert "address: 18 Rue de la Soie, 69003 Lyon" in lyon  # a quoted comma stays in its value
    assert len(rows) == 5


def test_it_reads_the_plain_text_release_notes():
    parsed = parse_sample("release-notes.txt")
    assert parsed.title is None
    assert "Picking rate raised to 1,150 picks per hour" in parsed.text


@pytest.mark.parametrize("name", sorted(os.listdir(SAMPLES)))
def test_every_sample_is_clean_text(name):
    text = parse_sample(name).text
    assert text and text == text.strip()
    assert "\x00" not in text and "\n\n\n" not in text
    assert not [line for line in text.split("\n") if "  " in line.strip() or line != line.rstrip()]


# --- dispatch ---------------------------------------------------------------------------------


def test_media_type_wins_over_the_file_name():
    parsed = parse_document(
        b"# Quarterly plan\n\nText.", filename="upload-17", media_type="text/markdown; charset=utf-8"
    )
    assert parsed.title == "Quarterly plan"


def test_generic_text_media_type_defers_to_a_specific_extension():
    parsed = parse_document(b"name,team\nAda,Robotics\n", filename="people.csv", media_type="text/plain")
    assert parsed.text == "name: Ada\nteam: Robotics"


def test_unknown_media_type_falls_back_to_the_extension():
    parsed = parse_document(b"<p>Hello</p>", filename="page.HTM", media_type="application/octet-stream")
    assert parsed.text == "Hello"


def test_it_rejects_an_unsupported_extension_naming_the_supported_ones():
    with pytest.raises(ParseError) as excinfo:
        parse_document(b"data", filename="drawing.xyz")
    assert str(excinfo.value) == "Unsupported file type .xyz; supported: .txt, .md, .html, .pdf, .docx, .csv."


def test_it_rejects_a_file_without_extension_or_media_type():
    with pytest.raises(ParseError, match="without an extension"):
        parse_document(b"data", filename="README")


def test_media_type_for_supported_and_unsupported_names():
    assert media_type_for("a/b/Guide.PDF") == "application/pdf"
    assert media_type_for("notes.markdown") == "text/markdown"
    assert media_type_for("x.docx") == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert media_type_for("photo.png") == ""
    assert media_type_for(".md") == ""  # a hidden file named ".md" has no extension
    assert SUPPORTED_EXTENSIONS == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv"}


def test_parsed_text_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ParsedText(text="a", title=None).text = "b"  # type: ignore[misc]


# --- text and markdown ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xef\xbb\xbfCaf\xc3\xa9", "Café"),  # UTF-8 with BOM
        ("Café".encode("utf-16"), "Café"),  # UTF-16 with BOM
        (b"Caf\xe9 costs \x805", "Café costs €5"),  # Windows-1252
        (b"\x81\x8d\x8f", "\x81\x8d\x8f"),  # not even cp1252: latin-1 always decodes
    ],
)
def test_it_decodes_text_in_common_encodings(content, expected):
    assert parse_document(content, filename="note.txt").text == expected


def test_it_normalises_whitespace():
    content = b"First   line\t here  \r\n\r\n\r\n\r\nSecond\x00 paragraph\x0cThird\n\n\n"
    assert parse_document(content, filename="a.txt").text == "First line here\n\nSecond paragraph\n\nThird"


def test_it_keeps_indentation_of_markdown_code_blocks():
    text = parse_document(b"Intro\n\n    code = 1\n", filename="a.md").text
    assert text == "Intro\n\n    code = 1"


def test_markdown_title_skips_code_fences_and_reads_underlined_headings():
    assert parse_document(b"```\n# not a title\n```\n\nGuide\n=====\n", filename="a.md").title == "Guide"
    assert parse_document(b"Just text.", filename="a.md").title is None


def test_it_rejects_binary_data_named_txt():
    with pytest.raises(ParseError, match="binary data"):
        parse_document(bytes(range(32)) * 100, filename="firmware.txt")


# --- HTML -------------------------------------------------------------------------------------


def test_html_title_falls_back_to_the_first_h1_and_paragraphs_stay_apart():
    content = b"<body><div><h1>Welcome</h1><p>One\n  two.</p><p>Three<br>four</p><ul><li>a</li><li>b</li></ul></div>"
    parsed = parse_document(content, filename="index.html")
    assert parsed.title == "Welcome"
    assert parsed.text == "Welcome\n\nOne two.\n\nThree\nfour\n\n- a\n- b"


def test_html_honours_the_declared_charset():
    content = b'<meta charset="windows-1252"><p>Caf\xe9</p>'
    assert parse_document(content, filename="a.html").text == "Café"


# --- PDF --------------------------------------------------------------------------------------


def _pdf_bytes(*, user_password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_it_rejects_a_malformed_pdf_with_a_readable_reason():
    with pytest.raises(ParseError) as excinfo:
        parse_document(b"%PDF-1.4 garbage", filename="broken.pdf")
    message = str(excinfo.value)
    assert message.startswith("Not a valid PDF: the file is damaged or incomplete")
    assert "Traceback" not in message


def test_it_rejects_a_truncated_pdf():
    content = (SAMPLES / "travel-policy.pdf").read_bytes()
    with pytest.raises(ParseError, match="Not a valid PDF"):
        parse_document(content[: len(content) // 2], filename="travel-policy.pdf")


def test_it_rejects_a_file_that_is_not_a_pdf_at_all():
    with pytest.raises(ParseError, match="does not start with a PDF header"):
        parse_document(b"<html>oops</html>", filename="report.pdf")


def test_it_rejects_a_password_protected_pdf():
    with pytest.raises(ParseError, match="password-protected"):
        parse_document(_pdf_bytes(user_password="secret"), filename="locked.pdf")


def test_it_opens_a_pdf_encrypted_with_an_empty_password():
    assert parse_document(_pdf_bytes(user_password=""), filename="permissions-only.pdf").text == ""


def test_a_pdf_without_a_text_layer_gives_empty_text():
    assert parse_document(_pdf_bytes(), filename="scan.pdf") == ParsedText(text="", title=None)


# --- DOCX -------------------------------------------------------------------------------------


def test_it_rejects_random_bytes_named_docx():
    with pytest.raises(ParseError, match=r"Not a valid Word document: the file is not a \.docx \(ZIP\) package"):
        parse_document(os.urandom(2048), filename="contract.docx")


def test_it_rejects_a_zip_that_is_not_a_word_document():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(ParseError, match="Not a valid Word document"):
        parse_document(buffer.getvalue(), filename="contract.docx")


def test_it_explains_that_old_doc_files_must_be_converted():
    with pytest.raises(ParseError, match=r"old \.doc file"):
        parse_document(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), filename="memo.docx")


# --- CSV --------------------------------------------------------------------------------------


def test_csv_sniffs_semicolons_and_names_unnamed_columns():
    content = b"Product;Price\nAtlas 4;120000;spare parts included\n;\n"
    assert parse_document(content, filename="prices.csv").text == (
        "Product: Atlas 4\nPrice: 120000\nColumn 3: spare parts included"
    )


def test_csv_with_only_a_header_lists_the_columns():
    assert parse_document(b"city,address\n", filename="empty.csv").text == "city | address"


def test_html_with_control_characters_is_still_read():
    parsed = parse_document(b"<title>Safety\x01</title><p>Safe\x00ty \x02first</p>", filename="a.html")
    assert parsed == ParsedText(text="Safety first", title="Safety")


def test_it_rejects_a_truncated_docx():
    content = (SAMPLES / "onboarding-checklist.docx").read_bytes()
    with pytest.raises(ParseError, match="ZIP package is damaged or incomplete"):
        parse_document(content[: len(content) // 2], filename="onboarding-checklist.docx")
