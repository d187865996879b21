"""What a search may return: the reader's ACL and the chat's optional filters, in one queryset."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from connectors.index_version import live_index
from connectors.models import Chunk
from connectors.selectors import acl_filter


@dataclass(frozen=True)
class SearchFilters:
    """Optional restrictions from the chat: connectors, metadata values, a date range."""

    connector_ids: tuple = ()
    metadata: dict = field(default_factory=dict)
    modified_after: dt.datetime | None = None
    modified_before: dt.datetime | None = None

    def apply(self, queryset: QuerySet[Chunk]) -> QuerySet[Chunk]:
        if self.connector_ids:
            queryset = queryset.filter(connector_id__in=self.connector_ids)
        if self.metadata:
            queryset = queryset.filter(document__metadata__contains=self.metadata)
        if self.modified_after:
            queryset = queryset.filter(document__source_modified_at__gte=self.modified_after)
        if self.modified_before:
            queryset = queryset.filter(document__source_modified_at__lt=self.modified_before)
        return queryset


NO_FILTERS = SearchFilters()


def visible_chunks(groups: list[str], filters: SearchFilters, version: int | None = None) -> QuerySet[Chunk]:
    """The chunks of one index version (the live one unless given) that the reader may see.

    A search reads the live version's number once and passes it to each of its queries, so the
    dense and the full-text side see the same version even if a rebuild switches meanwhile.
    """
    if version is None:
        version = live_index().number
    return filters.apply(Chunk.objects.filter(acl_filter(groups), index_version=version))


def few_enough_to_scan(filters: SearchFilters) -> bool:
    """Whether the filters' connectors hold at most RAG_EXACT_SCAN_MAX_CHUNKS chunks (0: never).

    Counted up to one past the limit on the connector index alone (an index-only scan: a few
    milliseconds at most, measured in README), all index versions together: during a rebuild a
    connector counts twice, which errs toward the HNSW walk and the GIN index. Without a connector
    filter the search is broad and keeps the indexes."""
    most = settings.RAG_EXACT_SCAN_MAX_CHUNKS
    if not most or not filters.connector_ids:
        return False
    # no ORDER BY (Chunk's default ordering would sort every chunk of the connectors first)
    sql, params = Chunk.objects.filter(connector_id__in=filters.connector_ids).order_by().values_list(
        "connector_id")[:most + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS few", params)
        return cursor.fetchone()[0] <= most
