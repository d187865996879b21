"""What the operator (not an admin in the web UI) allows sources to reach, as plain data.

Sources must not import Django, yet where they may connect is the operator's call, set in
the environment and read by assistant/settings.py. The connectors app registers a provider
at start-up (connectors/apps.py) that builds an OperatorPolicy from the settings each time
it is asked, so a changed setting (or a test's override) applies at once. Without a
provider (plain Python, outside the app) the policy is the strictest: no folder roots, no
allow-listed database hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProtectedDatabase:
    """The product's own database (from Django's DATABASES): never a source."""

    host: str  # "" or a directory: a unix socket on this machine
    port: int
    name: str
    user: str = ""
    password: str = ""


@dataclass(frozen=True)
class OperatorPolicy:
    #: Real paths folder and JSON Lines sources must lie under (CONNECTOR_DATA_DIR).
    data_roots: tuple[str, ...] = ()
    #: Database hosts (name or IP, optionally ":port") that may be loopback or private
    #: addresses (CONNECTOR_ALLOWED_DB_HOSTS).
    allowed_db_hosts: tuple[str, ...] = ()
    protected_databases: tuple[ProtectedDatabase, ...] = ()
    #: Where uploaded files live (UPLOAD_ROOT): the only place upload and library sources read.
    upload_root: str = ""


_provider: Callable[[], OperatorPolicy] | None = None


def set_provider(provider: Callable[[], OperatorPolicy] | None) -> None:
    global _provider
    _provider = provider


def current() -> OperatorPolicy:
    return _provider() if _provider is not None else OperatorPolicy()
