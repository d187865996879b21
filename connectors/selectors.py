"""Reads of documents through the reader's ACL (searching the index: connectors.search)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from connectors.models import Document


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
