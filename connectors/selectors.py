"""Reads of documents through the reader's ACL (searching the index: connectors.search)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from connectors.models import Document
from connectors.principals import group_names, is_user_principal, user_ids, user_principal


def acl_groups_of(user) -> list[str]:
    """The reader's ACL principals: their groups' names and their own user principal (which the
    libraries shared with them by name, or owned by them, carry; connectors.principals)."""
    if not user.is_authenticated or not user.is_active:
        return []
    names = [name for name in user.groups.values_list("name", flat=True) if not is_user_principal(name)]
    return sorted(names + [user_principal(user.pk)])


def connector_visible_q(groups: list[str]) -> Q:
    """Connectors whose documents a reader with these principals may read, judged on the connector:
    public ones, those shared with one of their groups, and libraries they own or that are shared
    with them by name. (Every document and chunk carries the same ACL; this only names connectors.)"""
    condition = Q(is_public=True)
    names = group_names(groups)
    if names:
        condition |= Q(groups__name__in=names)
    ids = user_ids(groups)
    if ids:
        condition |= Q(owner_id__in=ids) | Q(shared_users__id__in=ids)
    return condition


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
