"""Who may see and run a case: a case inherits the access of its expected sources.

A reader sees a case only when they may read every one of its sources that exists in the index
(a document through its ACL, a query result through its database connector's). A source that is
not in this installation's index yet (an imported set) restricts nothing. Checked at every
listing and every run, never stored: access changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from connectors.models import Connector, Document
from connectors.selectors import acl_filter, acl_groups_of


def _document_key(source: dict) -> tuple[str, str]:
    return str(source.get("connector") or ""), str(source.get("external_id") or "")


def _documents_of(cases) -> list[dict]:
    return [s for case in cases for s in case.expected_sources or () if s.get("kind", "document") == "document"]


def _hidden_documents(sources: list[dict], groups: list[str]) -> set[tuple[str, str]]:
    """The (connector, external id) of expected documents that exist and that `groups` may not read."""
    ids = {external for _name, external in map(_document_key, sources) if external}
    if not ids:
        return set()
    rows = Document.objects.filter(external_id__in=ids).values_list("connector__name", "external_id")
    readable = set(Document.objects.filter(external_id__in=ids).filter(acl_filter(groups))
                   .values_list("connector__name", "external_id"))
    hidden = set()
    for name, external in rows:
        if (name, external) not in readable:
            hidden.add((name, external))
            hidden.add(("", external))  # a source that names no connector: any copy hidden hides it
    return hidden


def _readable_connectors(names: set[str], groups: list[str]) -> tuple[set[str], set[str]]:
    """(the names that exist, those a reader in `groups` may query)."""
    existing = set(Connector.objects.admin_managed().filter(name__in=names).values_list("name", flat=True))
    condition = Q(is_public=True) | Q(groups__name__in=groups) if groups else Q(is_public=True)
    readable = set(Connector.objects.admin_managed().filter(name__in=names).filter(condition).values_list("name", flat=True))
    return existing, readable


def cases_readable(cases: Iterable, *, groups: list[str]) -> list:
    """The cases a reader in `groups` may see, in the given order (two queries for any number)."""
    cases = list(cases)
    hidden = _hidden_documents(_documents_of(cases), groups)
    queried = {str(s.get("connector") or "") for c in cases for s in c.expected_sources or () if s.get("kind") == "query"}
    existing, readable = _readable_connectors(queried, groups) if queried else (set(), set())

    def allowed(case) -> bool:
        for source in case.expected_sources or ():
            if source.get("kind") == "query":
                name = str(source.get("connector") or "")
                if name in existing and name not in readable:
                    return False
            elif _document_key(source) in hidden:
                return False
        return True

    return [case for case in cases if allowed(case)]


def cases_visible(cases: Iterable, *, user) -> list:
    """The cases `user` may see: staff only, and only those about sources they may read."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return []
    return cases_readable(cases, groups=acl_groups_of(user))


def case_visible(case, *, user) -> bool:
    return bool(cases_visible([case], user=user))
