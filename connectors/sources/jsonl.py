"""A JSON Lines file on the server: one document per line (an export format companies have too,
and the layout of public evaluation corpora such as BEIR's corpus.jsonl).

Each line is a JSON object; `id_field` names its stable identity (the external id),
`text_field` its text and `title_field` its title. Values of `metadata_fields` are kept
with the document (they become filterable metadata). A line that is not a JSON object,
lacks an id or text, or repeats an id is reported as a failure named after its line
number, so one bad line never stops a sync. Unchanged lines cost nothing: the sync
engine skips items whose content hash is the one already indexed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping

from pydantic import field_validator

from connectors.sources.data_roots import PathRefused, resolve_under_roots
from connectors.sources import operator_policy
from connectors.sources.base import (
    DestinationRefused,
    ItemFailure,
    Source,
    SourceConfig,
    SourceDocument,
    SourceError,
    SourceItem,
)


class JsonlSource(Source):
    kind = "jsonl"
    label = "JSON Lines file"

    class Config(SourceConfig):
        path: str
        id_field: str = "_id"
        title_field: str = "title"
        text_field: str = "text"
        metadata_fields: list[str] = []

        @field_validator("path")
        @classmethod
        def _absolute(cls, value: str) -> str:
            value = value.strip()
            if not os.path.isabs(value):
                raise ValueError("must be an absolute path, like /srv/exports/articles.jsonl")
            return os.path.normpath(value)

        @field_validator("id_field", "text_field")
        @classmethod
        def _named(cls, value: str) -> str:
            value = value.strip()
            if not value:
                raise ValueError("name a field of the JSON objects")
            return value

        @field_validator("title_field")
        @classmethod
        def _strip(cls, value: str) -> str:
            return value.strip()

        @field_validator("metadata_fields")
        @classmethod
        def _fields(cls, value: list[str]) -> list[str]:
            return list(dict.fromkeys(name.strip() for name in value if name.strip()))

    config: Config

    # --- the Source interface --------------------------------------------------------
    def check_destination(self) -> None:
        self._allowed_path()

    def check(self) -> str:
        self._require_file()
        return f"JSON Lines file {self.config.path}: {self.estimated_total()} lines"

    def list_ids(self) -> set[str]:
        ids = set()
        for _, record in self._records():
            if isinstance(record, dict):
                identity = _identity(record.get(self.config.id_field))
                if identity:
                    ids.add(identity)
        return ids

    def iter_documents(
        self, since: dict | None = None, previous: Mapping[str, dict] | None = None
    ) -> Iterator[SourceItem]:
        """Every line in file order. The engine's content hashes make a re-read of an
        unchanged file cheap, so no checkpoint is kept."""
        first_line: dict[str, int] = {}
        for number, record in self._records():
            item = self._item(number, record)
            if isinstance(item, SourceDocument):
                if item.external_id in first_line:
                    yield ItemFailure(
                        f"line {number}",
                        f"The id {item.external_id!r} was already used on line {first_line[item.external_id]}.",
                    )
                    continue
                first_line[item.external_id] = number
            yield item

    def estimated_total(self) -> int:
        """Non-blank lines (the progress bar's total)."""
        return sum(1 for _ in self._lines())

    # --- reading ---------------------------------------------------------------------
    def _allowed_path(self) -> str:
        """The file's real path, when it lies under the operator's data roots (checked at every read)."""
        try:
            return resolve_under_roots(self.config.path, operator_policy.current().data_roots)
        except PathRefused as exc:
            raise DestinationRefused(f"File {exc}", setting="path") from None

    def _require_file(self) -> str:
        """The real path to open: a link is resolved and judged where it leads."""
        real, path = self._allowed_path(), self.config.path
        if not os.path.exists(real):
            raise SourceError(f"File {path} does not exist")
        if not os.path.isfile(real):
            raise SourceError(f"{path} is not a file")
        if not os.access(real, os.R_OK):
            raise SourceError(f"File {path} is not readable")
        return real

    def _lines(self) -> Iterator[tuple[int, str]]:
        path = self._require_file()
        try:
            with open(path, encoding="utf-8", errors="strict") as handle:
                number = 0
                while True:
                    try:
                        line = handle.readline()
                    except UnicodeDecodeError:
                        raise SourceError(f"File {path} is not UTF-8 text (after line {number})") from None
                    if not line:
                        return
                    number += 1
                    if line.strip():
                        yield number, line
        except OSError as exc:
            raise SourceError(f"File {path} could not be read: {exc.strerror or exc}", permanent=False) from None

    def _records(self) -> Iterator[tuple[int, object]]:
        """(line number, parsed value), or (line number, ValueError) for a line that is not JSON."""
        for number, line in self._lines():
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                yield number, exc

    def _item(self, number: int, record: object) -> SourceItem:
        cfg = self.config
        failed = f"line {number}"
        if isinstance(record, ValueError):
            return ItemFailure(failed, f"The line is not valid JSON: {record}")
        if not isinstance(record, dict):
            return ItemFailure(failed, f"The line holds a JSON {type(record).__name__}, not an object.")
        identity = _identity(record.get(cfg.id_field))
        if not identity:
            return ItemFailure(failed, f"The line has no {cfg.id_field!r} (a string or a number).")
        text = record.get(cfg.text_field)
        if not isinstance(text, str):
            return ItemFailure(failed, f"The line (id {identity!r}) has no {cfg.text_field!r} text.")
        title = record.get(cfg.title_field) if cfg.title_field else None
        title = " ".join(title.split()) if isinstance(title, str) else ""
        metadata = {name: record[name] for name in cfg.metadata_fields if name in record}
        return SourceDocument(
            external_id=identity,
            title=title,
            location=f"{cfg.path}#{identity}",
            media_type="text/plain",
            text=text,
            metadata=metadata,
        )


def _identity(value) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return ""
