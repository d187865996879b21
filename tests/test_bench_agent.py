"""bench/agent.py runs end to end and reports the loop's own cost per step."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_bench_retrieval import ROOT, scratch_database_url


def test_it_reports_the_apps_time_per_tool_step():
    server, url = scratch_database_url()
    url = url.replace("bench_retrieval_test_", "bench_agent_test_")
    finished = subprocess.run([sys.executable, "bench/agent.py", "--runs", "2", "--database-url", url],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    [line] = finished.stdout.strip().splitlines()
    report = json.loads(line)
    assert report["app_ms_per_tool_step"]["samples"] == 2 * (1 + 3)
    assert 0 < report["app_ms_per_tool_step"]["median"] < 1000
    assert set(report["answer_app_ms"]) == {"1_step", "3_steps"} and "three_vs_one_step_app_ms" in report
