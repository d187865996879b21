"""What a source is: a small class that reads items from somewhere, never the ORM.

The sync engine calls `check()` to test the connection, `iter_documents()` to read
items (each a SourceDocument, or an ItemFailure for an item that could not be read),
and `list_ids()` to learn which items still exist, so deletions can be applied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class SourceError(Exception):
    """The source as a whole cannot be read; the message says what to fix."""

    #: A permanent error (bad credentials, missing folder) is not retried.
    permanent: bool = True

    def __init__(self, message: str, *, permanent: bool = True):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SourceDocument:
    """One item read from a source, before parsing.

    `content` holds the raw bytes (parsed by media type); a source that already has
    text (a database row) sets `text` instead and leaves `content` empty.
    """

    external_id: str
    title: str
    location: str = ""
    url: str = ""
    media_type: str = ""
    content: bytes = b""
    text: str | None = None
    modified_at: dt.datetime | None = None
    metadata: dict = field(default_factory=dict)
    #: Group names allowed to see the item; None means: the connector's ACL.
    acl_groups: tuple[str, ...] | None = None
    acl_public: bool | None = None


@dataclass(frozen=True)
class ItemFailure:
    """An item that exists in the source but could not be read."""

    external_id: str
    reason: str


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source:
    """Base class of every source kind; subclasses register in connectors.sources.registry."""

    kind: ClassVar[str]
    label: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]

    def __init__(self, config: SourceConfig):
        self.config = config

    def check(self) -> str:
        """Test the connection; return a short description or raise SourceError."""
        raise NotImplementedError

    def list_ids(self) -> set[str]:
        """Every external id the source holds now; raise SourceError when it cannot tell."""
        raise NotImplementedError

    def iter_documents(self, since: dt.datetime | None = None) -> Iterator[SourceDocument | ItemFailure]:
        raise NotImplementedError
