"""Hostile files: archive bombs, parsers that hang or eat memory, crashes.

Each one fails alone, with a reason an admin can act on; the worker that read it, and
the other files of the same sync, carry on.
"""

from __future__ import annotations

import io
import os
import re
import time
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from connectors import parsing
from connectors.models import Chunk, Connector, Document, SyncFailure, SyncRun
from connectors.indexing import parse_limits
from connectors.parsing import ParseError, parse_document
from connectors.parsing.limits import MAX_ARCHIVE_MEMBERS, run_limited, zip_expansion_problem
from connectors.sync import sync_run_execute
from connectors.upload_storage import upload_dir_for
from connectors.uploads import files_upload

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"
DOCX = SAMPLES / "onboarding-checklist.docx"


def docx_with(replacements: dict[str, bytes], *, extra: dict[str, bytes] | None = None) -> bytes:
    """The sample Word document with some parts replaced or added (deflated, as Word writes them)."""
    out = io.BytesIO()
    with zipfile.ZipFile(DOCX) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, replacements.get(item.filename, source.read(item.filename)))
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return out.getvalue()


def bomb(expanded_mb: int) -> bytes:
    """A valid-looking .docx whose document part unpacks to `expanded_mb` MB of nothing."""
    filler = b"<!--" + b" " * (expanded_mb * 1024 * 1024) + b"-->"
    return docx_with({}, extra={"word/media/filler.xml": filler})


# --- archives that expand enormously -------------------------------------------------------


def test_a_docx_that_unpacks_past_the_limit_is_refused_before_it_is_opened(settings):
    settings.PARSE_MAX_EXPANDED_MB = 4
    content = bomb(8)
    assert len(content) < 100_000  # tiny on disk...
    with pytest.raises(ParseError) as refused:
        parse_document(content, filename="minutes.docx", limits=parse_limits())
    message = str(refused.value)
    assert re.search(r"would unpack to [89] MB, over the limit of 4 MB", message), message
    assert "PARSE_MAX_EXPANDED_MB" in message and "archive bomb" in message


def test_a_docx_with_a_lying_directory_cannot_unpack_past_what_it_declares(settings):
    """The check reads declared sizes; zipfile never inflates a member beyond its declared size."""
    settings.PARSE_MAX_EXPANDED_MB = 4
    content = bytearray(bomb(8))
    # Shrink the declared size of the filler in the central directory to 1 KB.
    archive = zipfile.ZipFile(io.BytesIO(bytes(content)))
    info = archive.getinfo("word/media/filler.xml")
    assert zip_expansion_problem(bytes(content), what="Word document", max_expanded=4 * 1024 * 1024) is not None
    offset = content.rindex(b"PK\x01\x02")  # the last central directory entry is the filler's
    content[offset + 24 : offset + 28] = (1024).to_bytes(4, "little")  # its uncompressed size
    assert zip_expansion_problem(bytes(content), what="Word document", max_expanded=4 * 1024 * 1024) is None
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as lying, pytest.raises(zipfile.BadZipFile):
        # Reading stops at the declared size and the CRC check refuses the member.
        with lying.open(info.filename) as member:
            assert len(member.read()) <= 1024


def test_an_archive_with_too_many_members_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i in range(MAX_ARCHIVE_MEMBERS + 1):
            archive.writestr(f"word/x{i}.xml", b"")
    problem = zip_expansion_problem(out.getvalue(), what="Word document")
    assert problem and f"{MAX_ARCHIVE_MEMBERS + 1:,} files inside its archive" in problem


def test_a_normal_docx_is_well_under_the_default_limit():
    assert zip_expansion_problem(DOCX.read_bytes(), what="Word document") is None
    assert "Buddies meet new employees" in parse_document(DOCX.read_bytes(), filename="checklist.docx").text


def test_entities_in_a_docx_are_not_expanded():
    """A "billion laughs" document part: the XML parser must not expand entity references."""
    with zipfile.ZipFile(DOCX) as source:
        original = source.read("word/document.xml").decode("utf-8")
    laughs = "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "lol"}">' for i in range(10)
    )
    body_start = original.index("<w:document")
    hostile = (
        original[:body_start]
        + f"<!DOCTYPE w:document [{laughs}]>"
        + original[body_start:].replace("Buddies meet", "&lol9; Buddies meet", 1)
    )
    started = time.monotonic()
    try:
        parsed = parse_document(docx_with({"word/document.xml": hostile.encode("utf-8")}), filename="laughs.docx")
    except ParseError as exc:
        assert "could not be read" in str(exc) or "Not a valid Word document" in str(exc)
    else:
        assert parsed.text.count("lol") < 1000
    assert time.monotonic() - started < 30


def test_uploading_a_docx_bomb_is_refused_with_the_reason(db, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.UPLOAD_ROOT = tmp_path / "uploads"
    settings.PARSE_MAX_EXPANDED_MB = 4
    connector = Connector(name="Board packs", kind="upload", is_public=True)
    connector.config = {"path": str(upload_dir_for(connector))}
    connector.save()
    with django_capture_on_commit_callbacks(execute=False):
        result = files_upload(
            connector=connector,
            files=[SimpleUploadedFile("bomb.docx", bomb(8)), SimpleUploadedFile("fine.docx", DOCX.read_bytes())],
        )
    assert re.search(r"would unpack to [89] MB", result.refused["bomb.docx"])
    assert result.accepted == ["fine.docx"]
    assert sorted(p.name for p in upload_dir_for(connector).iterdir()) == ["fine.docx"]


# --- time, memory and crashes -----------------------------------------------------------------


def _sleepy(content: bytes, *, charset: str = "", max_chars: int = 0):
    time.sleep(30)


def _hungry(content: bytes, *, charset: str = "", max_chars: int = 0):
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def _crashing(content: bytes, *, charset: str = "", max_chars: int = 0):
    os.abort()


def test_a_parser_that_hangs_is_stopped_at_the_deadline(settings, monkeypatch):
    settings.PARSE_TIMEOUT_SECONDS = 1
    monkeypatch.setitem(parsing._PARSERS, "text", _sleepy)
    started = time.monotonic()
    with pytest.raises(ParseError) as refused:
        parse_document(b"hello", filename="notes.txt", isolate=True, limits=parse_limits())
    assert time.monotonic() - started < 10
    assert "took longer than 1 seconds" in str(refused.value) and "PARSE_TIMEOUT_SECONDS" in str(refused.value)


def test_a_parser_that_eats_memory_is_stopped_at_the_budget(settings, monkeypatch):
    settings.PARSE_MAX_MEMORY_MB = 256
    monkeypatch.setitem(parsing._PARSERS, "text", _hungry)
    with pytest.raises(ParseError) as refused:
        parse_document(b"hello", filename="notes.txt", isolate=True, limits=parse_limits())
    assert "needed more than 256 MB of memory" in str(refused.value)
    assert bytearray(300 * 1024 * 1024)  # this process was never limited


def test_a_parser_that_crashes_fails_only_that_file(monkeypatch):
    monkeypatch.setitem(parsing._PARSERS, "text", _crashing)
    with pytest.raises(ParseError) as refused:
        parse_document(b"hello", filename="notes.txt", isolate=True, limits=parse_limits())
    assert "crashed" in str(refused.value)


def test_a_parse_error_in_the_child_reaches_the_caller_in_its_own_words():
    with pytest.raises(ParseError) as refused:
        parse_document(b"%PDF-1.7\n garbage", filename="broken.pdf")
    assert str(refused.value).startswith("Not a valid PDF")


def test_large_text_is_parsed_in_a_child_with_the_same_result():
    content = ("# Handbook\n\n" + "Employees receive 27 days of paid leave. " * 20000).encode()
    assert len(content) > parsing.ISOLATE_TEXT_OVER_BYTES
    isolated = parse_document(content, filename="big.md")
    inline = parse_document(content, filename="big.md", isolate=False)
    assert isolated == inline and isolated.title == "Handbook"


def test_run_limited_returns_values_and_raises_parse_errors():
    assert run_limited(sum, [1, 2, 3]) == 6
    with pytest.raises(ParseError, match="could not be read: ZeroDivisionError"):
        run_limited(lambda: 1 / 0)


# --- in a sync: the hostile file fails alone ------------------------------------------------


def test_hostile_files_fail_alone_in_a_sync_with_recorded_reasons(db, tmp_path, settings, monkeypatch):
    settings.PARSE_MAX_EXPANDED_MB = 4
    settings.PARSE_TIMEOUT_SECONDS = 2
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "bomb.docx").write_bytes(bomb(8))
    (folder / "damaged.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    (folder / "slow.html").write_bytes(b"<p>never read</p>")
    (folder / "leave.md").write_text("# Leave\n\nEmployees receive 27 days of paid annual leave.\n")
    (folder / "checklist.docx").write_bytes(DOCX.read_bytes())

    real_html = parsing._PARSERS["html"]

    def slow_html(content: bytes, *, charset: str = "", max_chars: int = 0):
        if b"never read" in content:
            time.sleep(30)
        return real_html(content, charset=charset, max_chars=max_chars)

    monkeypatch.setitem(parsing._PARSERS, "html", slow_html)
    monkeypatch.setattr(parsing, "_ALWAYS_ISOLATED", frozenset({"pdf", "docx", "html"}))
    connector = Connector.objects.create(name="Share", kind="folder", config={"path": str(folder)}, is_public=True)
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    run.refresh_from_db()

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    reasons = dict(SyncFailure.objects.filter(run=run).values_list("external_id", "reason"))
    assert set(reasons) == {"bomb.docx", "damaged.pdf", "slow.html"}
    assert "archive bomb" in reasons["bomb.docx"]
    assert reasons["damaged.pdf"].startswith("Not a valid PDF")
    assert "took longer than 2 seconds" in reasons["slow.html"]
    assert sorted(Document.objects.filter(connector=connector).values_list("external_id", flat=True)) == [
        "checklist.docx", "leave.md"
    ]
    assert Chunk.objects.filter(document__external_id="leave.md").count() == 1
