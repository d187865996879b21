"""The operator's policy for connector tests: the machine's sample database servers on
127.0.0.1 are allow-listed (as an operator would for an intranet server), and folders and
JSON Lines files may be read under pytest's temporary directories and the demo handbook
(as `make run` allows it). Tests of the policy itself override these settings. The sample
database fixtures (tests/connectors/sample_dbs.py) are registered once for all tests in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _operator_policy(settings, tmp_path_factory):
    settings.CONNECTOR_ALLOWED_DB_HOSTS = ["127.0.0.1"]
    settings.CONNECTOR_DATA_DIR = [str(tmp_path_factory.getbasetemp()), str(settings.BASE_DIR / "samples" / "handbook")]
