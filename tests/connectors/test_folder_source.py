"""The folder source: which files it offers, what it reads, and how it fails (no database)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from connectors.parsing import media_type_for
from connectors.sources import folder as folder_module
from connectors.sources.base import ItemFailure, ItemUnchanged, SourceDocument, SourceError
from connectors.sources.folder import FolderSource
from connectors.sources.registry import build_source

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "handbook"
SAMPLE_NAMES = sorted(os.listdir(SAMPLES))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """The demo handbook plus files a real share holds that must not be indexed."""
    root = tmp_path / "docs"
    shutil.copytree(SAMPLES, root)
    (root / "policies" / "old").mkdir(parents=True)
    (root / "policies" / "old" / "2019-leave.txt").write_text("Leave was 25 days in 2019.")
    (root / ".secret.md").write_text("# Hidden")
    (root / ".git").mkdir()
    (root / ".git" / "notes.txt").write_text("hidden folder")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n")
    (root / "~$boarding-checklist.docx").write_bytes(b"lock")
    (root / "archive.txt").mkdir()  # a folder named like a file is walked, not read
    (root / "archive.txt" / "inside.md").write_text("# Inside")
    return root


def source(path: Path, **options) -> FolderSource:
    return FolderSource(FolderSource.Config(path=str(path), **options))


def documents(src: FolderSource) -> list[SourceDocument | ItemFailure]:
    return list(src.iter_documents())


def test_it_lists_supported_files_as_relative_posix_paths(docs):
    expected = {*SAMPLE_NAMES, "policies/old/2019-leave.txt", "archive.txt/inside.md"}
    assert source(docs).list_ids() == expected
    assert source(docs).estimated_total() == len(expected)


def test_it_reads_every_file_sorted_by_path(docs):
    items = documents(source(docs))
    assert all(isinstance(item, SourceDocument) for item in items)
    assert [item.external_id for item in items] == sorted(source(docs).list_ids())

    pdf = next(item for item in items if item.external_id == "travel-policy.pdf")
    assert pdf.content == (SAMPLES / "travel-policy.pdf").read_bytes()
    assert pdf.title == ""  # the parser's title wins
    assert pdf.location == str(docs / "travel-policy.pdf")
    assert pdf.media_type == "application/pdf" == media_type_for("travel-policy.pdf")
    stat = os.stat(docs / "travel-policy.pdf")
    assert pdf.metadata == {"path": "travel-policy.pdf", "size": len(pdf.content), "mtime_ns": stat.st_mtime_ns}
    mtime = os.stat(docs / "travel-policy.pdf").st_mtime
    assert pdf.modified_at == dt.datetime.fromtimestamp(mtime, tz=dt.UTC)
    assert pdf.modified_at.utcoffset() == dt.timedelta(0)


def test_it_includes_hidden_files_when_asked(docs):
    ids = source(docs, include_hidden=True).list_ids()
    assert {".secret.md", ".git/notes.txt"} <= ids


def test_it_can_limit_extensions_and_depth(docs):
    assert source(docs, extensions=["PDF", "docx"]).list_ids() == {"travel-policy.pdf", "onboarding-checklist.docx"}
    assert source(docs, recursive=False).list_ids() == set(SAMPLE_NAMES)


def test_files_with_the_same_size_and_mtime_are_reported_unchanged_without_reading(docs, monkeypatch):
    first = {item.external_id: item.metadata for item in source(docs).iter_documents()}
    (docs / "release-notes.txt").write_text("Atlas 5.0 - released today")
    opened = []
    real_open = open

    def spy_open(path, *args, **kwargs):
        opened.append(os.path.basename(str(path)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy_open)
    items = list(source(docs).iter_documents(previous=first))
    changed = [i.external_id for i in items if isinstance(i, SourceDocument)]
    unchanged = {i.external_id for i in items if isinstance(i, ItemUnchanged)}
    assert changed == ["release-notes.txt"]
    assert unchanged == set(first) - {"release-notes.txt"}
    assert opened == ["release-notes.txt"]


def test_a_file_over_the_size_limit_fails_without_being_read(docs):
    items = list(source(docs, max_file_bytes=1000).iter_documents())
    failures = {i.external_id: i.reason for i in items if isinstance(i, ItemFailure)}
    assert "travel-policy.pdf" in failures and "limit" in failures["travel-policy.pdf"]


def test_fetch_rereads_only_the_named_files(docs):
    assert [i.external_id for i in source(docs).fetch(["office-locations.csv"])] == ["office-locations.csv"]


def test_it_follows_links_inside_the_folder(docs):
    (docs / "handbook-link.md").symlink_to(docs / "employee-handbook.md")
    [item] = [i for i in documents(source(docs)) if i.external_id == "handbook-link.md"]
    assert item.content == (docs / "employee-handbook.md").read_bytes()


def test_it_refuses_links_that_escape_the_folder(tmp_path, docs):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "salaries.csv").write_text("name,salary\nAda,1\n")
    (docs / "salaries.csv").symlink_to(outside / "salaries.csv")
    (docs / "escape").symlink_to(outside, target_is_directory=True)
    (docs / "sneaky.md").symlink_to("../outside/../outside/salaries.csv")
    (docs / "gone-outside.md").symlink_to(outside / "missing.md")

    src = source(docs)
    ids = src.list_ids()
    assert not {"salaries.csv", "escape/salaries.csv", "sneaky.md", "gone-outside.md"} & ids
    for item in documents(src):
        assert isinstance(item, SourceDocument)
        assert b"Ada,1" not in item.content


def test_a_dangling_link_inside_is_reported_as_a_failed_item(docs):
    (docs / "moved.md").symlink_to(docs / "no-longer-here.md")
    items = documents(source(docs))
    [failure] = [item for item in items if isinstance(item, ItemFailure)]
    assert failure.external_id == "moved.md"
    assert failure.reason.startswith("The file could not be read: ")
    assert "No such file" in failure.reason
    assert sum(isinstance(item, SourceDocument) for item in items) == len(source(docs).list_ids()) - 1


def test_an_unreadable_file_is_a_failed_item_and_the_rest_is_read(docs, monkeypatch):
    real_open = open

    def guarded_open(path, *args, **kwargs):
        if str(path).endswith("travel-policy.pdf"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(folder_module, "open", guarded_open, raising=False)
    items = documents(source(docs))
    failures = [item for item in items if isinstance(item, ItemFailure)]
    assert failures == [ItemFailure("travel-policy.pdf", "The file could not be read: Permission denied")]
    assert len(items) == len(source(docs).list_ids())


def test_an_unlistable_subfolder_fails_its_items_and_blocks_deletions(docs, monkeypatch):
    real_scandir = os.scandir

    def guarded_scandir(path="."):
        if str(path).endswith("policies"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(folder_module.os, "scandir", guarded_scandir)
    items = documents(source(docs))
    assert ItemFailure("policies", "The folder could not be listed: Permission denied") in items
    with pytest.raises(SourceError, match="Cannot list policies"):
        source(docs).list_ids()  # a partial listing would make the engine delete its documents


def test_check_counts_supported_files(docs):
    assert source(docs).check() == f"Folder {docs}: {len(SAMPLE_NAMES) + 2} supported files"


@pytest.mark.parametrize("method", ["check", "list_ids", "estimated_total"])
def test_a_missing_folder_is_a_source_error(tmp_path, method):
    src = source(tmp_path / "unmounted-share")
    with pytest.raises(SourceError, match=f"Folder {tmp_path / 'unmounted-share'} does not exist"):
        getattr(src, method)()


def test_reading_a_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        documents(source(tmp_path / "unmounted-share"))


def test_a_file_instead_of_a_folder_is_a_source_error(tmp_path):
    (tmp_path / "share").write_text("not a folder")
    with pytest.raises(SourceError, match="is not a directory"):
        source(tmp_path / "share").check()


def test_an_unreadable_folder_is_a_source_error(tmp_path, monkeypatch):
    monkeypatch.setattr(folder_module.os, "scandir", lambda path=".": (_ for _ in ()).throw(PermissionError(13, "")))
    with pytest.raises(SourceError, match="is not readable"):
        source(tmp_path).check()


def test_the_registry_builds_it_from_settings(docs):
    src = build_source("folder", {"path": str(docs), "extensions": [".md"]})
    assert isinstance(src, FolderSource) and src.label == "Folder on the server"
    assert src.list_ids() == {"employee-handbook.md", "archive.txt/inside.md"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"path": "relative/docs"}, "path: Value error, must be an absolute path"),
        ({"path": "/srv/docs", "extensions": [".exe"]}, "extensions: Value error, .exe is not supported"),
        ({"path": "/srv/docs", "follow_links": True}, "follow_links: Extra inputs are not permitted"),
        ({}, "path: Field required"),
    ],
)
def test_the_registry_explains_bad_settings(config, message):
    with pytest.raises(SourceError, match=message):
        build_source("folder", config)
