"""Files admins upload into an "upload" connector: checked, stored, then synced.

Every file is checked before it lands in the connector's folder:

- its size against settings.UPLOAD_MAX_BYTES;
- its extension against what the parsers read (connectors.parsing.SUPPORTED_EXTENSIONS);
- its content against its extension (a program renamed .pdf is refused, not stored);
- a .docx (a ZIP archive) that would unpack enormously (an archive bomb) is refused;
- its name: directories stripped, normalised, never hidden, never "..".

Accepted files are written to a hidden temporary file in the same folder and renamed into
place, so a sync never reads half a file. Then a sync is queued; it indexes new and changed
files and removes the documents of deleted ones.
"""

from __future__ import annotations

import codecs
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import UploadedFile
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _, gettext_lazy, ngettext

from connectors import audit
from connectors.models import Connector, SyncRun
from connectors.parsing import SUPPORTED_EXTENSIONS
from connectors.parsing.limits import zip_expansion_problem
from connectors.services import connector_sync_start
from connectors.sync import sync_followup_request, sync_followup_start
from connectors.upload_storage import FILE_KINDS, UPLOAD_KIND, upload_dir_ensure, upload_dir_for  # noqa: F401 (views read uploads.UPLOAD_KIND)

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200
_TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".csv"})
_TYPE_NAMES = {
    ".pdf": "PDF",
    ".docx": "Word (.docx)",
    ".txt": gettext_lazy("text"),
    ".md": "Markdown",
    ".markdown": "Markdown",
    ".html": "HTML",
    ".htm": "HTML",
    ".csv": "CSV",
}


class UploadError(ValueError):
    """An upload request that cannot be served at all (wrong connector kind, unknown file)."""


@dataclass
class UploadResult:
    #: Stored file names, in the order they were sent.
    accepted: list[str] = field(default_factory=list)
    #: Name as sent by the browser -> why it was refused, in plain words.
    refused: dict[str, str] = field(default_factory=dict)
    #: The sync queued for the accepted files (None when nothing was accepted).
    run: SyncRun | None = None


@dataclass(frozen=True)
class UploadedFileInfo:
    name: str
    size: int
    modified_at: float


def accepted_extensions() -> list[str]:
    return sorted(SUPPORTED_EXTENSIONS)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def safe_file_name(name: str) -> tuple[str | None, str | None]:
    """(the name to store, None) or (None, why the name is refused)."""
    base = (name or "").replace("\\", "/").split("/")[-1].strip()
    if base in ("", ".", ".."):
        return None, _("The file has no usable name.")
    if base.startswith("."):
        return None, _("Hidden files (names starting with a dot) are not accepted; rename the file.")
    if base.startswith("~$"):
        return None, _("This is a temporary lock file of an office program, not a document.")
    try:
        cleaned = get_valid_filename(base)
    except SuspiciousFileOperation:
        return None, _("The file has no usable name.")
    if cleaned.startswith(".") or cleaned in ("", ".", ".."):
        return None, _("The file has no usable name.")
    if len(cleaned) > MAX_NAME_LENGTH:
        return None, _("The file name is longer than %(limit)s characters; shorten it.") % {"limit": MAX_NAME_LENGTH}
    return cleaned, None


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def _content_problem(path: Path, ext: str) -> str | None:
    """Why the bytes in `path` are not a file of type `ext`, or None when they are."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    what = _TYPE_NAMES.get(ext, ext)
    if not head:
        return _("The file is empty.")
    if ext == ".pdf":
        if not head.startswith(b"%PDF-"):
            return _(
                "The file is named %(ext)s but is not a PDF document (its content does not start with %%PDF-)."
            ) % {"ext": ext}
        return None
    if ext == ".docx":
        try:
            with zipfile.ZipFile(path) as archive:
                if "word/document.xml" not in archive.namelist():
                    return _("The file is named .docx but is not a Word document (no word/document.xml inside).")
        except (zipfile.BadZipFile, OSError):
            return _("The file is named .docx but is not a Word document (not a valid .docx archive).")
        return zip_expansion_problem(
            path, what="Word document", max_expanded=settings.PARSE_MAX_EXPANDED_MB * 1024 * 1024
        )
    if ext in _TEXT_EXTENSIONS:
        return _text_problem(path, what)
    return None


def _text_problem(path: Path, what: str) -> str | None:
    with open(path, "rb") as handle:
        start = handle.read(4)
        if start.startswith(codecs.BOM_UTF8):
            encoding, skip = "utf-8", 3
        elif start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding, skip = "utf-16", 0  # the codec reads the byte order mark itself
        else:
            encoding, skip = "utf-8", 0
        handle.seek(skip)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            while chunk := handle.read(256 * 1024):
                if "\x00" in decoder.decode(chunk):
                    return _("The file is named as %(what)s but contains binary data (NUL bytes).") % {"what": what}
            if "\x00" in decoder.decode(b"", final=True):
                return _("The file is named as %(what)s but contains binary data (NUL bytes).") % {"what": what}
        except UnicodeDecodeError:
            return _(
                "The file is named as %(what)s but is not UTF-8 or UTF-16 text "
                "(a binary file, or text in an old encoding: save it as UTF-8 and upload again)."
            ) % {"what": what}
    return None


def _store(
    upload: UploadedFile, directory: Path, name: str, ext: str, limit: int, too_big: str | None = None
) -> str | None:
    """Write the upload into `directory` as `name`; return why it was refused, or None.
    `too_big`: what to say when the bytes pass `limit` (default: the per-file limit)."""
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".upload-", suffix=".part", delete=False)
    temp = Path(handle.name)
    try:
        size = 0
        with handle:
            for chunk in upload.chunks():
                size += len(chunk)
                if size > limit:  # the announced size may lie
                    return too_big or _("The file is larger than the limit of %(limit)s.") % {"limit": human_size(limit)}
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        problem = _content_problem(temp, ext)
        if problem:
            return problem
        target = directory / name
        if target.resolve().parent != directory.resolve():  # never outside, whatever the name
            return _("The file has no usable name.")
        os.chmod(temp, 0o644)
        os.replace(temp, target)
        return None
    finally:
        if temp.exists():
            temp.unlink()


@dataclass
class UploadQuota:
    """What the owner's libraries may still take (connectors.library_quota fills it): checked
    before a file is stored, and again while its bytes stream in.

    The owner may already be over a limit (libraries handed over to them, a limit lowered since):
    then no file is added while they hold more files than allowed, and no byte while they hold
    more bytes; replacing a file with one no larger adds nothing and stays possible. Each refusal
    says what they hold, the limit, and what to do."""

    max_files: int
    max_bytes: int
    files_used: int
    bytes_used: int
    #: Files already in this folder by name -> size: replacing one frees its place and its bytes.
    existing: dict[str, int] = field(default_factory=dict)

    def room_for(self, name: str) -> tuple[int, str | None]:
        """(the bytes this file may have, None) or (0, why it is refused)."""
        replaced = self.existing.get(name)
        if replaced is None and self.files_used > self.max_files:
            remove = self.files_used - self.max_files + 1
            return 0, ngettext(
                "Your libraries hold %(count)d files, more than your limit of %(limit)d (for example after "
                "libraries were handed over to you), so no file can be added: remove %(remove)d of them first, "
                "or ask an administrator to raise the limit.",
                "Your libraries hold %(count)d files, more than your limit of %(limit)d (for example after "
                "libraries were handed over to you), so no file can be added: remove %(remove)d of them first, "
                "or ask an administrator to raise the limit.",
                remove,
            ) % {"count": self.files_used, "limit": self.max_files, "remove": remove}
        if replaced is None and self.files_used >= self.max_files:
            return 0, ngettext(
                "Your libraries hold %(count)d file, your limit; remove files or ask an administrator for more.",
                "Your libraries hold %(count)d files, your limit; remove files or ask an administrator for more.",
                self.max_files,
            ) % {"count": self.max_files}
        if self.bytes_used > self.max_bytes:  # over already: a file may only replace one at least as large
            return (replaced, None) if replaced else (0, self.over_bytes())
        room = self.max_bytes - self.bytes_used + (replaced or 0)
        if room <= 0:
            return 0, self.over_bytes()
        return room, None

    def over_bytes(self) -> str:
        if self.bytes_used > self.max_bytes:
            return _(
                "Your libraries hold %(used)s, more than your limit of %(limit)s (for example after libraries "
                "were handed over to you), so nothing more can be stored: remove files to free more than %(over)s, "
                "or ask an administrator to raise the limit. A file may still replace one at least as large."
            ) % {"used": human_size(self.bytes_used), "limit": human_size(self.max_bytes),
                 "over": human_size(self.bytes_used - self.max_bytes)}
        left = max(0, self.max_bytes - self.bytes_used)
        return _(
            "This file would take your libraries over your limit of %(limit)s (%(left)s left); "
            "remove files or ask an administrator for more."
        ) % {"limit": human_size(self.max_bytes), "left": human_size(left)}

    def take(self, name: str, size: int) -> None:
        replaced = self.existing.get(name)
        self.files_used += 0 if replaced is not None else 1
        self.bytes_used += size - (replaced or 0)
        self.existing[name] = size


def files_upload(
    *, connector: Connector, files: list[UploadedFile], actor=None, quota: UploadQuota | None = None
) -> UploadResult:
    """Check each file, store the good ones in the connector's folder, then queue a sync.

    A file with the name of one already uploaded replaces it (the sync updates its document).
    `quota`: the owner's room left, for a library (checked before and while each file is stored).
    """
    if connector.kind not in FILE_KINDS:
        raise UploadError(_("Files can only be uploaded into an “Uploaded files” connector."))
    limit = settings.UPLOAD_MAX_BYTES
    directory = upload_dir_ensure(connector)
    result = UploadResult()
    for upload in files:
        shown = (upload.name or "").strip() or _("(unnamed file)")
        name, problem = safe_file_name(upload.name or "")
        ext = _extension(name) if name else ""
        if problem is None and ext not in SUPPORTED_EXTENSIONS:
            accepted = ", ".join(accepted_extensions())
            if ext:
                problem = _("%(ext)s files are not accepted; upload one of: %(accepted)s.") % {
                    "ext": ext, "accepted": accepted
                }
            else:
                problem = _("Files without an extension are not accepted; upload one of: %(accepted)s.") % {
                    "accepted": accepted
                }
        if problem is None and upload.size is not None and upload.size > limit:
            problem = _("The file is %(size)s, over the limit of %(limit)s.") % {
                "size": human_size(upload.size), "limit": human_size(limit)
            }
        file_limit, too_big = limit, None
        if problem is None and quota is not None:
            room, problem = quota.room_for(name)
            if problem is None and upload.size is not None and upload.size > room:
                problem = quota.over_bytes()
            if room < limit:
                file_limit, too_big = room, quota.over_bytes()
        if problem is None:
            try:
                problem = _store(upload, directory, name, ext, file_limit, too_big)
            except OSError as exc:
                logger.warning("storing upload %s for connector %s failed", name, connector.id, exc_info=True)
                reason = exc.strerror or exc.__class__.__name__
                problem = _("The file could not be stored: %(reason)s.") % {"reason": reason}
        if problem:
            result.refused[shown] = problem
        else:
            if quota is not None:
                quota.take(name, (directory / name).stat().st_size)
            if name in result.accepted:
                result.accepted.remove(name)
            result.accepted.append(name)
    if (result.accepted or result.refused) and not connector.is_library:  # a library is its owner's own
        audit.audit_record(
            actor=actor,
            action=audit.FILES_UPLOADED,
            target=connector,
            details={"accepted": result.accepted, "refused": sorted(result.refused)},
        )
    if result.accepted:
        result.run = _sync_after_change(connector)
    return result


def _sync_after_change(connector: Connector) -> SyncRun:
    """Queue a sync for changed files; if one is already reading the folder, it may have passed
    them: ask for a follow-up run when it ends, so they never wait for a manual sync."""
    run = connector_sync_start(connector=connector)
    if run.status != SyncRun.Status.RUNNING:
        return run  # queued: it has not read the folder yet, so it will see the files
    sync_followup_request(connector_id=connector.id)
    if not SyncRun.objects.filter(id=run.id, status__in=SyncRun.ACTIVE).exists():
        # It ended in between, perhaps before the flag was set: take the flag and start now.
        return sync_followup_start(connector_id=connector.id) or run
    return run


def file_delete(*, connector: Connector, name: str, actor=None) -> SyncRun:
    """Remove an uploaded file and queue a sync, which removes its document from the index."""
    if connector.kind not in FILE_KINDS:
        raise UploadError(_("This connector has no uploaded files."))
    directory = upload_dir_for(connector)
    if not name or name != os.path.basename(name) or name.startswith(".") or name in ("..",):
        raise UploadError(_("There is no uploaded file named %(name)r.") % {"name": name})
    target = directory / name
    if target.resolve().parent != directory.resolve() or not target.is_file():
        raise UploadError(_("There is no uploaded file named %(name)r.") % {"name": name})
    target.unlink()
    if not connector.is_library:
        audit.audit_record(actor=actor, action=audit.FILE_DELETED, target=connector, details={"file": name})
    return _sync_after_change(connector)


def files_list(connector: Connector) -> list[UploadedFileInfo]:
    """The connector's uploaded files by name (what the sync will index)."""
    directory = upload_dir_for(connector)
    found = []
    try:
        with os.scandir(directory) as listing:
            for entry in listing:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
                found.append(UploadedFileInfo(entry.name, stat.st_size, stat.st_mtime))
    except FileNotFoundError:
        return []
    return sorted(found, key=lambda info: info.name.lower())
