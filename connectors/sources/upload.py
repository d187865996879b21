"""Files that admins upload from the browser, kept in a folder that belongs to the connector.

The folder (settings.UPLOAD_ROOT / <connector id>) is set by the service that creates the
connector, never typed by an admin; connectors.uploads checks and writes the files. Reading
them is the folder source's job: same external ids (file names), same change detection.
"""

from __future__ import annotations

import os
from typing import ClassVar

from pydantic import field_validator

from connectors.sources import operator_policy
from connectors.sources.base import DestinationRefused, SourceConfig, SourceError
from connectors.sources.data_roots import PathRefused, resolve_under_roots
from connectors.sources.folder import FolderSource


class UploadSource(FolderSource):
    kind = "upload"
    label = "Uploaded files"
    #: Config fields that forms never show: the service sets them.
    form_hidden_fields: ClassVar[tuple[str, ...]] = ("path",)

    class Config(SourceConfig):
        path: str

        @field_validator("path")
        @classmethod
        def _absolute(cls, value: str) -> str:
            value = value.strip()
            if not os.path.isabs(value):
                raise ValueError("must be an absolute path")
            return os.path.normpath(value)

    def __init__(self, config: Config):
        # Uploads are one flat folder of checked files: no hidden files, no sub-folders, no
        # size limit of its own (connectors.uploads enforces settings.UPLOAD_MAX_BYTES).
        super().__init__(
            FolderSource.Config(path=config.path, include_hidden=False, recursive=False, max_file_bytes=0)
        )
        self.upload_config = config

    def _allowed_root(self) -> str:
        """Uploaded files are read under UPLOAD_ROOT, wherever the operator's data folders are."""
        upload_root = operator_policy.current().upload_root
        if not upload_root:
            return super()._allowed_root()
        try:
            return resolve_under_roots(self.config.path, (upload_root,))
        except PathRefused as exc:
            raise DestinationRefused(f"Upload folder {exc}", setting="path") from None

    def check(self) -> str:
        try:
            self._require_root()
        except SourceError:
            raise SourceError("The upload folder of this connector is missing; upload a file to create it.") from None
        count = self.estimated_total()
        return f"{count} uploaded file{'' if count == 1 else 's'} ready to index"
