"""What a source is: a small class that reads items from somewhere, never the ORM.

The sync engine calls `check()` to test the connection, `iter_documents()` to read
items (each a SourceDocument, an ItemUnchanged for an item the source knows has not
changed, or an ItemFailure for an item that could not be read), and `list_ids()` to
learn which items still exist, so deletions can be applied.

Incremental syncs: `iter_documents(since=..., previous=...)` receives the checkpoint
the source left after the last successful sync (`self.checkpoint`, any JSON, e.g. a
database cursor) and the metadata stored for each indexed item (e.g. a file's mtime,
an HTTP ETag), so it can skip what did not change without reading it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
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


class DestinationRefused(SourceError):
    """The settings point where the operator does not allow sources to read (a private
    database host, the product's own database, a folder outside the data roots).
    `setting` names the config field to fix, so a form can show the message next to it."""

    def __init__(self, message: str, *, setting: str = "", permanent: bool = True):
        super().__init__(message, permanent=permanent)
        self.setting = setting


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


@dataclass(frozen=True)
class ItemUnchanged:
    """An item that still exists and has not changed since the last sync (not re-read)."""

    external_id: str


SourceItem = SourceDocument | ItemUnchanged | ItemFailure


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source:
    """Base class of every source kind; subclasses register in connectors.sources.registry."""

    kind: ClassVar[str]
    label: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]

    #: Names of config fields that hold secrets (passwords, tokens): stored encrypted,
    #: never rendered back into a form, a log or an error.
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # Settings that say where the secrets are sent (host, port, account): when one changes, a
    # stored secret is not carried over to the new place; the admin types it again.
    destination_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: SourceConfig):
        self.config = config
        #: The checkpoint to store when this sync succeeds; sources update it as they read.
        self.checkpoint: dict = {}

    def check(self) -> str:
        """Test the connection; return a short description or raise SourceError."""
        raise NotImplementedError

    def check_destination(self) -> None:
        """Raise DestinationRefused when the settings point where the operator's policy does
        not allow (checked on save; sources check again whenever they read). May resolve a
        name or a path; never connects or reads."""

    def list_ids(self) -> set[str]:
        """Every external id the source holds now; raise SourceError when it cannot tell."""
        raise NotImplementedError

    def iter_documents(
        self, since: dict | None = None, previous: Mapping[str, dict] | None = None
    ) -> Iterator[SourceItem]:
        """Read the source. `since`: the checkpoint of the last successful sync (None: read all).
        `previous`: external id -> metadata stored with each indexed item."""
        raise NotImplementedError

    def fetch(self, external_ids: Iterable[str]) -> Iterator[SourceItem]:
        """Read these items again (e.g. last run's failures); sources with a cheap lookup override it."""
        wanted = set(external_ids)
        for item in self.iter_documents():
            if item.external_id in wanted:
                yield item

    def estimated_total(self) -> int | None:
        """How many items a full read yields, when cheap to know (for progress)."""
        return None

    #: True when `acl_rule` may return something (lets the engine skip per-item work otherwise).
    has_acl_rules: ClassVar[bool] = False

    def acl_rule(self, external_id: str) -> AclRule | None:
        """An ACL the connector's settings give this item (e.g. a folder mapped to groups), or
        None: the connector's default ACL. Unlike an ACL the item carries itself, a rule is
        applied again whenever the settings change, without re-reading or re-embedding."""
        return None


@dataclass(frozen=True)
class AclRule:
    """Who may see items a setting of the connector covers; `label` says which setting."""

    groups: tuple[str, ...]
    label: str
    public: bool = False
