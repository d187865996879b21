"""Long fuzz of every JSON and form endpoint: no input may make the app answer 500. Prints one JSON object.

Runs tests/test_bad_input_fuzz.py (the same endpoints, values and personas as CI) with many more
Hypothesis examples per endpoint and persona, then prints the counts: requests sent, answers per
status code, per endpoint, and the failing cases (an endpoint whose view let an exception escape,
i.e. a 500). Needs the test database settings of `make test` (DATABASE_URL, REDIS_URL...).

    SECRET_KEY=test-only-secret DEBUG=false SECURE_COOKIES=false DATABASE_URL=... REDIS_URL=... \\
        .venv/bin/python bench/fuzz_endpoints.py [--examples 2000] [-k chat]

--examples 2000 sends about 200,000 requests in all (roughly an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="Hypothesis examples per endpoint and persona")
    parser.add_argument("-k", default="", help="pytest -k expression to fuzz only some endpoints")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "fuzz.jsonl"
        env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "FUZZ_REPORT": str(report)}
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--create-db",
                   "tests/test_bad_input_fuzz.py", "-k", f"answer_500 {'and (' + args.k + ')' if args.k else ''}"]
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []

    totals: Counter = Counter()
    per_endpoint: dict[str, dict] = {}
    for row in rows:
        statuses = Counter(row["statuses"])
        totals.update(statuses)
        entry = per_endpoint.setdefault(row["endpoint"], {"requests": 0, "statuses": Counter()})
        entry["requests"] += sum(statuses.values())
        entry["statuses"].update(statuses)
    failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in result.stdout.splitlines()
              if line.startswith("FAILED ")]
    print(json.dumps({
        "benchmark": "fuzz_endpoints",
        "examples_per_case": args.examples,
        "cases": len(rows),
        "requests": sum(totals.values()),
        "server_errors": sum(v for k, v in totals.items() if k.startswith("5") or k == "exception"),
        "statuses": dict(sorted(totals.items())),
        "failed_cases": failed,
        "seconds": round(seconds, 1),
        "per_endpoint": {name: {"requests": e["requests"], "statuses": dict(sorted(e["statuses"].items()))}
                         for name, e in sorted(per_endpoint.items())},
        "pytest_exit_code": result.returncode,
        "pytest_tail": result.stdout.splitlines()[-5:] if result.returncode else [],
    }, indent=2))
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
