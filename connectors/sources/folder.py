"""A folder on the server (a mounted share, an export directory): every supported file in it.

External ids are paths relative to the folder, in POSIX form ("policies/travel.pdf"),
so they stay stable when the share is mounted elsewhere. Symbolic links are followed
only when they point inside the folder: a link must never expose files outside it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from pydantic import Field, field_validator

from connectors.parsing import SUPPORTED_EXTENSIONS, media_type_for
from connectors.sources.data_roots import PathRefused, inside, resolve_under_roots
from connectors.sources import operator_policy
from connectors.sources.base import (
    AclRule,
    DestinationRefused,
    ItemFailure,
    ItemUnchanged,
    Source,
    SourceConfig,
    SourceDocument,
    SourceError,
    SourceItem,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    relpath: str  # the external id
    path: str  # where the file was found, under the configured folder (its location)
    real_path: str  # what is read: under the folder's real path; a link's target, checked to lie inside


@dataclass(frozen=True)
class _Unlistable:
    relpath: str
    reason: str


class FolderSource(Source):
    kind = "folder"
    label = "Folder on the server"

    class Config(SourceConfig):
        path: str
        include_hidden: bool = False
        extensions: list[str] | None = None
        recursive: bool = True
        #: Larger files are recorded as failures without being read (0: no limit).
        max_file_bytes: int = 50 * 1024 * 1024
        folder_groups: dict[str, list[str]] = Field(
            default_factory=dict,
            description=(
                'Sub-folders visible only to some groups, as JSON: {"hr": ["hr"], "finance/payroll": ["payroll"]}. '
                "A file in a listed sub-folder (at any depth below it) is visible to those groups only; the "
                "deepest listed folder wins; other files follow the access settings above. A change applies "
                "on save, without re-indexing."
            ),
        )

        @field_validator("folder_groups")
        @classmethod
        def _folder_mapping(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
            cleaned: dict[str, list[str]] = {}
            for folder, groups in value.items():
                key = folder.strip().replace("\\", "/").strip("/")
                parts = key.split("/")
                if not key or any(part in ("", ".", "..") for part in parts):
                    raise ValueError(f"{folder!r} is not a sub-folder path like hr or finance/payroll")
                names = sorted({g.strip() for g in groups if g and g.strip()})
                if any(len(name) > 150 for name in names):
                    raise ValueError(f"a group name for {folder!r} is longer than 150 characters")
                if key in cleaned:
                    raise ValueError(f"sub-folder {key!r} is listed twice")
                cleaned[key] = names
            return cleaned

        @field_validator("path")
        @classmethod
        def _absolute(cls, value: str) -> str:
            value = value.strip()
            if not os.path.isabs(value):
                raise ValueError("must be an absolute path, like /srv/documents")
            return os.path.normpath(value)

        @field_validator("extensions")
        @classmethod
        def _known_extensions(cls, value: list[str] | None) -> list[str] | None:
            if value is None:
                return None
            normalized = []
            for ext in value:
                ext = ext.strip().lower()
                ext = ext if ext.startswith(".") else f".{ext}"
                if ext not in SUPPORTED_EXTENSIONS:
                    raise ValueError(f"{ext} is not supported; choose from {', '.join(sorted(SUPPORTED_EXTENSIONS))}")
                normalized.append(ext)
            return sorted(set(normalized))

    config: Config

    # --- the Source interface --------------------------------------------------------
    def check_destination(self) -> None:
        self._allowed_root()

    def check(self) -> str:
        self._require_root()
        return f"Folder {self.config.path}: {self.estimated_total()} supported files"

    def list_ids(self) -> set[str]:
        ids = set()
        for entry in self._walk():
            if isinstance(entry, _Unlistable):
                # Without this part of the tree the engine would delete its documents.
                raise SourceError(f"Cannot list {entry.relpath} in folder {self.config.path}: {entry.reason}")
            ids.add(entry.relpath)
        return ids

    def iter_documents(
        self, since: dict | None = None, previous: Mapping[str, dict] | None = None
    ) -> Iterator[SourceItem]:
        """Every supported file, sorted by path. A file whose size and mtime match what was
        stored last time is reported unchanged without being read."""
        previous = previous or {}
        for entry in self._walk():
            if isinstance(entry, _Unlistable):
                yield ItemFailure(entry.relpath, f"The folder could not be listed: {entry.reason}")
                continue
            yield self._read(entry, previous.get(entry.relpath))

    def fetch(self, external_ids: Iterable[str]) -> Iterator[SourceItem]:
        wanted = set(external_ids)
        for entry in self._walk():
            if isinstance(entry, _Entry) and entry.relpath in wanted:
                yield self._read(entry, None)

    def _read(self, entry: _Entry, known: dict | None) -> SourceItem:
        try:
            stat = os.stat(entry.real_path)
            if known and known.get("size") == stat.st_size and known.get("mtime_ns") == stat.st_mtime_ns:
                return ItemUnchanged(entry.relpath)
            if self.config.max_file_bytes and stat.st_size > self.config.max_file_bytes:
                return ItemFailure(
                    entry.relpath,
                    f"The file is {stat.st_size:,} bytes, over this connector's limit of "
                    f"{self.config.max_file_bytes:,} bytes.",
                )
            with open(entry.real_path, "rb") as handle:
                content = handle.read()
        except OSError as exc:
            return ItemFailure(entry.relpath, f"The file could not be read: {_reason(exc)}")
        return SourceDocument(
            external_id=entry.relpath,
            title="",  # the parser's title (PDF metadata, first heading) wins
            location=entry.path,
            media_type=media_type_for(entry.relpath),
            content=content,
            modified_at=dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.UTC),
            metadata={"path": entry.relpath, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
        )

    @property
    def has_acl_rules(self) -> bool:  # type: ignore[override]
        return bool(self.config.folder_groups)

    def acl_rule(self, external_id: str) -> AclRule | None:
        """The groups of the deepest mapped sub-folder that holds the file, if any."""
        folder = external_id.rsplit("/", 1)[0] if "/" in external_id else ""
        while folder:
            groups = self.config.folder_groups.get(folder)
            if groups is not None:
                return AclRule(groups=tuple(groups), label=f"folder mapping {folder}/")
            folder = folder.rsplit("/", 1)[0] if "/" in folder else ""
        return None

    def estimated_total(self) -> int:
        """The number of supported files (the progress bar's total)."""
        return sum(1 for entry in self._walk() if isinstance(entry, _Entry))

    # --- walking the tree --------------------------------------------------------------
    def _allowed_root(self) -> str:
        """The folder's real path, when it lies under the operator's data roots (checked at every walk)."""
        try:
            return resolve_under_roots(self.config.path, operator_policy.current().data_roots)
        except PathRefused as exc:
            raise DestinationRefused(f"Folder {exc}", setting="path") from None

    def _require_root(self) -> str:
        """The real path to walk: a linked folder is judged (and read) where it leads."""
        real, root = self._allowed_root(), self.config.path
        if not os.path.exists(real):
            raise SourceError(f"Folder {root} does not exist")
        if not os.path.isdir(real):
            raise SourceError(f"Folder {root} is not a directory")
        try:
            with os.scandir(real):
                pass
        except OSError:
            raise SourceError(f"Folder {root} is not readable") from None
        return real

    def _wanted(self, name: str) -> bool:
        if name.startswith("~$"):  # Office's lock file next to an open document
            return False
        ext = os.path.splitext(name)[1].lower()
        allowed = self.config.extensions if self.config.extensions is not None else SUPPORTED_EXTENSIONS
        return ext in allowed

    def _walk(self) -> list[_Entry | _Unlistable]:
        """Supported files under the root sorted by relative path, and folders that failed."""
        real_root = self._require_root()
        root = self.config.path  # the walk lists the real folder; locations keep the configured path
        found: list[_Entry | _Unlistable] = []
        pending = [""]  # relative directories still to list; no recursion, any depth works
        while pending:
            reldir = pending.pop()
            try:
                with os.scandir(os.path.join(real_root, reldir)) as listing:
                    entries = list(listing)
            except OSError as exc:
                found.append(_Unlistable(reldir, _reason(exc)))
                continue
            for item in entries:
                if item.name.startswith(".") and not self.config.include_hidden:
                    continue
                relpath = f"{reldir}/{item.name}" if reldir else item.name
                try:
                    if item.is_symlink():
                        target = os.path.realpath(item.path)
                        if not inside(target, real_root):
                            logger.info("skipping %s: the link points outside %s", item.path, root)
                            continue
                        # Linked folders are not walked: their target lies inside and is listed anyway.
                        # A dangling link is listed, so its failure is reported; a link to a
                        # pipe or device is not, as reading it could block.
                        readable = os.path.isfile(target) or not os.path.lexists(target)
                        if readable and self._wanted(item.name):
                            found.append(_Entry(relpath, os.path.join(root, relpath), target))
                    elif item.is_dir(follow_symlinks=False):
                        if self.config.recursive:
                            pending.append(relpath)
                    elif item.is_file(follow_symlinks=False) and self._wanted(item.name):
                        found.append(_Entry(relpath, os.path.join(root, relpath), item.path))
                except OSError as exc:  # vanished or unreadable between listing and looking
                    if self._wanted(item.name):
                        found.append(_Entry(relpath, os.path.join(root, relpath), item.path))
                    logger.info("cannot inspect %s: %s", item.path, _reason(exc))
        found.sort(key=lambda entry: entry.relpath)
        return found


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or exc.__class__.__name__
