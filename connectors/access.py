"""Why can user U see document D? The rule that grants (or would grant) access.

The answer is computed from the same stored ACL that retrieval filters on
(Document.acl_public / acl_groups, copied onto every chunk), so it can never say
"yes" where search says "no"; the connector's settings only name the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.models import Document
from connectors.principals import group_names, user_principal
from connectors.selectors import acl_groups_of


@dataclass(frozen=True)
class AccessExplanation:
    allowed: bool
    #: "public_connector", "public_source", "group_connector", "group_folder", "group_source",
    #: "inactive", "denied", "nobody"
    rule: str
    message: str
    #: The groups that grant access (allowed), or the groups that would (denied).
    groups: list[str] = field(default_factory=list)


def _dataset_acl(document: Document) -> str | None:
    """The ACL mode of the database dataset a row came from ("column", "groups", "public")."""
    name = (document.metadata or {}).get("dataset")
    for dataset in (document.connector.config or {}).get("datasets") or []:
        if isinstance(dataset, dict) and dataset.get("name") == name:
            return dataset.get("acl")
    return None


def _folder_rule_label(document: Document) -> str | None:
    from connectors.services import connector_acl_source

    source = connector_acl_source(document.connector)
    rule = source.acl_rule(document.external_id) if source is not None else None
    return rule.label if rule else None


def _library_access(user, document: Document) -> AccessExplanation:
    """The same stored ACL, read as a library's sharing: its owner, colleagues by name, groups."""
    library = document.connector
    principals = set(acl_groups_of(user))
    needed = set(document.acl_groups or [])
    if user.pk == library.owner_id and user_principal(user.pk) in needed:
        return AccessExplanation(True, "library_owner", f"Owner of the library “{library.name}”.")
    if user_principal(user.pk) in needed:
        return AccessExplanation(True, "library_colleague", f"The library “{library.name}” is shared with them by name.")
    granting = sorted(set(group_names(principals)) & needed)
    if granting:
        return AccessExplanation(
            True, "library_group", f"Group {', '.join(granting)} via the sharing of the library “{library.name}”.",
            granting,
        )
    return AccessExplanation(
        False, "denied", f"{user.get_username()} cannot see it: the library “{library.name}” is not shared with them.",
        sorted(group_names(needed)),
    )


def document_access_explain(*, user, document: Document) -> AccessExplanation:
    """Whether `user` may see `document` in answers, citations and document views, and why."""
    connector = document.connector
    if not user.is_active:
        return AccessExplanation(False, "inactive", f"{user.get_username()} cannot see it: the account is inactive.")
    if connector.owner_id is not None and not document.acl_public:
        return _library_access(user, document)
    source_acl = document.acl_from_source
    if document.acl_public:
        if source_acl:
            return AccessExplanation(
                True, "public_source", "Public: the source marks this item visible to everyone signed in."
            )
        return AccessExplanation(
            True, "public_connector", f"Public connector: “{connector.name}” is visible to everyone signed in."
        )
    user_groups = set(acl_groups_of(user))
    needed = sorted(document.acl_groups or [])
    granting = sorted(user_groups & set(needed))
    if granting:
        names = ", ".join(granting)
        if source_acl:
            mode = _dataset_acl(document)
            if mode == "column":
                how = "group column value of this row"
                rule = "group_column"
            elif mode == "groups":
                how = "the fixed groups of its dataset"
                rule = "group_dataset"
            else:
                how = "the item's own ACL from the source"
                rule = "group_source"
            return AccessExplanation(True, rule, f"Group {names} via {how} (connector “{connector.name}”).", granting)
        label = _folder_rule_label(document)
        if label:
            return AccessExplanation(
                True, "group_folder", f"Group {names} via the {label} of connector “{connector.name}”.", granting
            )
        return AccessExplanation(
            True, "group_connector", f"Group {names} via the ACL of connector “{connector.name}”.", granting
        )
    if not needed:
        return AccessExplanation(
            False, "nobody", f"{user.get_username()} cannot see it: no group has access to this document.", []
        )
    if source_acl:
        origin = "the item's own ACL from the source"
    else:
        label = _folder_rule_label(document)
        origin = f"the {label} of connector “{connector.name}”" if label else f"connector “{connector.name}”"
    return AccessExplanation(
        False,
        "denied",
        f"{user.get_username()} cannot see it: needs one of {', '.join(needed)} (set by {origin}).",
        needed,
    )
