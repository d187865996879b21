"""Reads of the index, always through the reader's ACL."""

from __future__ import annotations

from functools import lru_cache

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from pgvector.django import CosineDistance

from connectors.models import Chunk, Document


def acl_groups_of(user) -> list[str]:
    if not user.is_authenticated or not user.is_active:
        return []
    return sorted(user.groups.values_list("name", flat=True))


def acl_filter(groups: list[str]) -> Q:
    """Rows a reader in `groups` may see: public ones, or those shared with one of the groups."""
    condition = Q(acl_public=True)
    if groups:
        condition |= Q(acl_groups__overlap=groups)
    return condition


def documents_visible(*, user) -> QuerySet[Document]:
    if not user.is_authenticated or not user.is_active:
        return Document.objects.none()
    return Document.objects.filter(acl_filter(acl_groups_of(user)))


def document_get_visible(*, user, document_id) -> Document:
    """The document if the user may see it; Document.DoesNotExist otherwise (never a hint)."""
    return documents_visible(user=user).select_related("connector").get(id=document_id)


@lru_cache(maxsize=1)
def pgvector_version() -> tuple[int, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    return tuple(int(part) for part in row[0].split(".")) if row else (0,)


def chunks_nearest(*, embedding: list[float], groups: list[str], k: int, connector_ids=None) -> list[Chunk]:
    """The k chunks closest to `embedding` among those the reader may see.

    The ACL is a condition of the same query. With pgvector >= 0.8 the HNSW scan is
    iterative, so a selective ACL still yields k rows instead of fewer.
    """
    queryset = Chunk.objects.filter(acl_filter(groups))
    if connector_ids:
        queryset = queryset.filter(connector_id__in=connector_ids)
    queryset = (
        queryset.select_related("document", "document__connector")
        .annotate(distance=CosineDistance("embedding", embedding))
        .order_by("distance")[:k]
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL hnsw.ef_search = 100")
            if pgvector_version() >= (0, 8):
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        return list(queryset)
