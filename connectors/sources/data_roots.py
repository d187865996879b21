"""Which server paths folder and JSON Lines sources may read: only under the operator's data
roots (CONNECTOR_DATA_DIR), judged after resolving symbolic links and "..".

    real = resolve_under_roots("/data/handbook", operator_policy.current().data_roots)

A path typed by an admin ("/", "/etc/passwd", "/data/../etc") or a link inside a root that
points outside is refused with PathRefused, whose message says where files may live.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

ROOTS_SETTING = "CONNECTOR_DATA_DIR"


class PathRefused(ValueError):
    """The path lies outside every allowed data root; the message says what to change."""


def inside(path: str, root: str) -> bool:
    """True when real path `path` is `root` or below it (both already resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_under_roots(path: str, roots: Iterable[str]) -> str:
    """The real path of `path` when it lies under one of `roots`; PathRefused otherwise."""
    roots = [root for root in roots if root]
    if not os.path.isabs(path):
        raise PathRefused(f"{path} is not an absolute path: give one under an allowed data folder")
    real = os.path.realpath(path)
    if not roots:
        raise PathRefused(
            f"{path} cannot be read: the operator has not allowed any data folder ({ROOTS_SETTING} is empty)"
        )
    for root in roots:
        if inside(real, os.path.realpath(root)):
            return real
    resolved = f" (it resolves to {real})" if real != os.path.normpath(path) else ""
    listed = ", ".join(roots)
    raise PathRefused(
        f"{path}{resolved} is outside the allowed data folders ({listed}): choose a path under one of them, "
        f"or ask the operator to add a folder to {ROOTS_SETTING}"
    )
