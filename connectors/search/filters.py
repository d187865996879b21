"""What a search may return: the reader's ACL and the chat's optional filters, in one queryset."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import QuerySet

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


def visible_chunks(groups: list[str], filters: SearchFilters) -> QuerySet[Chunk]:
    return filters.apply(Chunk.objects.filter(acl_filter(groups)))


