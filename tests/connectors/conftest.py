"""The operator's policy for connector tests: the machine's sample database servers on
127.0.0.1 are allow-listed (as an operator would for an intranet server), and folders and
JSON Lines files may be read under pytest's temporary directories and the demo handbook
(as `make run` allows it). Tests of the policy itself override these settings."""

from __future__ import annotations

import socket

import pytest

from tests.connectors.sample_dbs import my_chinook, pg_chinook, pg_northwind, pg_reader  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _operator_policy(settings, tmp_path_factory):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    settings.CONNECTOR_DATA_DIR = [str(tmp_path_factory.getbasetemp()), str(settings.BASE_DIR / "samples" / "handbook")]


#: The sample database servers these tests read as sources (the machine's PostgreSQL and MariaDB).
SAMPLE_SERVERS = {"PostgreSQL": ("127.0.0.1", 5432), "MariaDB": ("127.0.0.1", 3306)}


@pytest.fixture(scope="session")
def sample_database_servers():
    """Skip, saying why, where the sample servers are missing (a bare machine runs the suite
    against the embedded PostgreSQL, which listens on a socket only, and has no MariaDB)."""
    missing = []
    for name, address in SAMPLE_SERVERS.items():
        try:
            socket.create_connection(address, timeout=2).close()
        except OSError:
            missing.append(f"{name} on {address[0]}:{address[1]}")
    if missing:
        pytest.skip(f"needs the sample database servers as sources; missing: {', '.join(missing)}")

