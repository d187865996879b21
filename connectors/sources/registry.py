"""Source kinds by name. Adding a kind is one module plus one line here."""

from __future__ import annotations

from pydantic import ValidationError

from connectors.sources.base import Source, SourceError
from connectors.sources.database import MySQLSource, PostgresSource
from connectors.sources.folder import FolderSource
from connectors.sources.jsonl import JsonlSource
from connectors.sources.library import LibrarySource
from connectors.sources.upload import UploadSource
from connectors.sources.web import WebSource

SOURCES: dict[str, type[Source]] = {
    FolderSource.kind: FolderSource,
    PostgresSource.kind: PostgresSource,
    MySQLSource.kind: MySQLSource,
    UploadSource.kind: UploadSource,
    WebSource.kind: WebSource,
    JsonlSource.kind: JsonlSource,
    LibrarySource.kind: LibrarySource,
}


def kind_choices() -> list[tuple[str, str]]:
    """The kinds an admin may create (a user's library is made from the libraries page)."""
    return [(kind, cls.label) for kind, cls in SOURCES.items() if not getattr(cls, "user_owned", False)]


def build_source(kind: str, config: dict, secrets: dict | None = None) -> Source:
    """Instantiate the source for a connector, or raise SourceError saying what is wrong.
    `secrets` (decrypted secret fields, e.g. a password) are merged into the config."""
    try:
        cls = SOURCES[kind]
    except KeyError:
        raise SourceError(f"Unknown source kind {kind!r}; choose one of {', '.join(SOURCES)}.") from None
    try:
        parsed = cls.Config.model_validate({**(config or {}), **(secrets or {})})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in exc.errors()
        )
        raise SourceError(f"Invalid {kind} settings: {problems}") from None
    return cls(parsed)
