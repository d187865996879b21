"""Index versions: what is embedded (the recipe), which version searches read, which ones writes fill.

The recipe is everything that changes the chunks or their vectors: the embedding model and its
dimensions, the chunk size and overlap, and the format of the embedded text (the header put above
each chunk). Its fingerprint is compared with the live version's: when they differ, the index is
out of date and the staff pages say so until a rebuild (connectors/rebuild.py) has made a version
with the configured recipe live.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Max

from connectors.indexing import embedded_text_fingerprint
from connectors.models import IndexVersion

#: The version chunks belong to when no IndexVersion row exists yet (Chunk.index_version's default).
FIRST_VERSION = 1


def embedded_text_format() -> str:
    """The embedded text's recipe (contextual chunk header, CHUNK_CONTEXT, chunk size)."""
    return embedded_text_fingerprint()


def index_recipe() -> dict:
    """What the configured workers embed, as a JSON-able dict."""
    return {
        "embedding_model": settings.EMBEDDING_MODEL,
        "dimensions": settings.EMBEDDING_DIMENSIONS,
        "chunk_tokens": settings.CHUNK_TOKENS,
        "chunk_overlap_tokens": settings.CHUNK_OVERLAP_TOKENS,
        "embedded_text": embedded_text_format(),
    }


def recipe_fingerprint(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def configured_fingerprint() -> str:
    return recipe_fingerprint(index_recipe())


@dataclass(frozen=True)
class LiveIndex:
    number: int
    embedding_model: str
    dimensions: int

    def vectors_comparable(self) -> bool:
        """Whether a question embedded by the configured model may be compared with its vectors."""
        return self.embedding_model == settings.EMBEDDING_MODEL and self.dimensions == settings.EMBEDDING_DIMENSIONS


def live_index() -> LiveIndex:
    """The version every search reads (one small query: read once per search, then passed on)."""
    row = IndexVersion.objects.filter(state=IndexVersion.State.LIVE).values_list("number", "recipe").first()
    if row is None:  # a fresh database: the first version, built with the configured recipe
        return LiveIndex(FIRST_VERSION, settings.EMBEDDING_MODEL, settings.EMBEDDING_DIMENSIONS)
    number, recipe = row
    return LiveIndex(
        number, recipe.get("embedding_model", ""), int(recipe.get("dimensions", settings.EMBEDDING_DIMENSIONS))
    )


def live_version_ensure() -> IndexVersion:
    """The live version's row, created for the chunks already there if none exists (call in a transaction)."""
    live = IndexVersion.objects.select_for_update().filter(state=IndexVersion.State.LIVE).first()
    if live is None:
        recipe = index_recipe()
        number = (IndexVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
        live = IndexVersion.objects.create(
            number=max(number, FIRST_VERSION), state=IndexVersion.State.LIVE, recipe=recipe,
            fingerprint=recipe_fingerprint(recipe),
        )
    return live


def versions_written() -> list[int]:
    """The versions a document indexed now is stored into (call inside the storing transaction).

    Every live or building version whose recipe is the configured one: during a rebuild both, so
    nothing indexed meanwhile is missing after the switch. When the live version's recipe is no
    longer the configured one and a rebuild is building the new one, only the new one (the live
    version keeps the document's previous chunks until the switch, as it keeps every other one).
    With no version matching (settings changed, no rebuild started yet), the live one.
    """
    fingerprint = configured_fingerprint()
    with connection.cursor() as cursor:
        # Wait for a rebuild being started or switched (they hold these rows FOR UPDATE), then
        # read in a new statement, which sees what they committed: a rebuild's scan never misses
        # a document stored meanwhile, and a switch never happens under a store.
        cursor.execute(
            f"SELECT 1 FROM {IndexVersion._meta.db_table} WHERE state IN ('live', 'building') FOR KEY SHARE"
        )
    rows = list(
        IndexVersion.objects.filter(state__in=[IndexVersion.State.LIVE, IndexVersion.State.BUILDING]).values_list(
            "number", "fingerprint", "state"
        )
    )
    matching = sorted(number for number, print_, _ in rows if print_ == fingerprint)
    if matching:
        return matching
    live = [number for number, _, state in rows if state == IndexVersion.State.LIVE]
    return live or [FIRST_VERSION]


@dataclass(frozen=True)
class IndexStatus:
    live: IndexVersion | None
    building: IndexVersion | None
    configured_recipe: dict
    out_of_date: bool


def index_status() -> IndexStatus:
    """What the staff pages and `manage.py index_rebuild --status` show."""
    versions = {v.state: v for v in IndexVersion.objects.exclude(state=IndexVersion.State.RETIRED)}
    live, building = versions.get(IndexVersion.State.LIVE), versions.get(IndexVersion.State.BUILDING)
    recipe = index_recipe()
    out_of_date = live is not None and live.fingerprint != recipe_fingerprint(recipe)
    return IndexStatus(live=live, building=building, configured_recipe=recipe, out_of_date=out_of_date)
