"""Who an ACL entry names: a group (by name) or, for libraries shared with colleagues, one user.

Document.acl_groups and Chunk.acl_groups hold principals: group names, and `~user:<id>` for a
user a library is shared with by name (its owner included). A reader's principals are their
groups' names plus their own user principal (connectors.selectors.acl_groups_of), so the one
overlap test that retrieval, citations and document pages already run grants both. A group
whose name starts with the reserved prefix grants nothing: nobody can name a group after a
user to read that user's libraries.
"""

from __future__ import annotations

USER_PREFIX = "~user:"


def user_principal(user_id: int) -> str:
    return f"{USER_PREFIX}{int(user_id)}"


def is_user_principal(name: str) -> bool:
    return name.startswith(USER_PREFIX)


def group_names(principals) -> list[str]:
    """The group names among `principals` (user principals left out)."""
    return [name for name in principals if not is_user_principal(name)]


def user_ids(principals) -> list[int]:
    """The user ids that `principals` name."""
    ids = []
    for name in principals:
        if is_user_principal(name):
            try:
                ids.append(int(name[len(USER_PREFIX):]))
            except ValueError:
                continue
    return ids
