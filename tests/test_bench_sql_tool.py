"""bench/sql_tool.py prints the cost of governed SQL: govern() times over the legitimate corpus and
a governed Chinook aggregate against the same SQL run directly, on the machine's sample servers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.connectors.sample_dbs import SAMPLES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.usefixtures("sample_database_servers")
def test_it_times_governance_and_compares_a_governed_aggregate_with_the_direct_one():
    done = subprocess.run(
        [sys.executable, "bench/sql_tool.py", "--repeat", "2", "--runs", "3", "--samples", str(SAMPLES)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    report = json.loads(done.stdout)
    assert report["govern"]["statements"] >= 180 and report["govern"]["calls"] == 2 * report["govern"]["statements"]
    assert 0 < report["govern"]["best_of_repeat"]["p50_ms"] <= report["govern"]["p95_ms"]
    assert 0 < report["govern"]["cpu"]["p50_ms"] <= report["govern"]["cpu"]["p95_ms"]
    for dialect in ("postgres", "mysql"):
        execution = report["execution"][dialect]
        assert execution["governed_median_ms"] > 0 and execution["direct_median_ms"] > 0
        assert execution["ratio"] == pytest.approx(execution["governed_median_ms"] / execution["direct_median_ms"], rel=0.01)
