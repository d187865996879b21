"""bench/evaluation_cases.py runs end to end and reports the app's own time per case."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_bench_retrieval import ROOT, scratch_database_url


def test_it_reports_the_apps_own_time_per_case():
    server, url = scratch_database_url()
    url = url.replace("bench_retrieval_test_", "bench_evaluation_cases_test_")
    finished = subprocess.run([sys.executable, "bench/evaluation_cases.py", "--cases", "3", "--database-url", url],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["cases"] == 3 and report["passed"] == 3
    assert 0 < report["app_ms_per_case"]["median"] and report["process_cpu_ms_per_case"] > 0
    assert report["database_cpu_ms_per_case"] > 0 and report["answer_path"].startswith("plain")
    assert report["target_ms"] == 150.0
