"""The ACL property test (tests/rag/test_acl_property.py) at thousands of examples.

    .venv/bin/python bench/acl_property.py [--examples 10000] [--batch 500] [--max-minutes 600]

The suite runs 30 examples of the connectors' property and 15 of the libraries' one; this runs
both in batches of --batch examples each (examples_run counts one of them), each batch
with its own Hypothesis seed, against a scratch test database (test_bench_acl) and Redis db 13,
until --examples have run or --max-minutes have passed (then it says how many ran). Prints one
JSON object: examples run, batches, failed batches with the seed to replay each
(`pytest tests/rag/test_acl_property.py --hypothesis-seed=SEED` with ACL_PROPERTY_EXAMPLES set
to --batch), seconds. Any failure is a leak of a chunk, citation, title or document page.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/rag/test_acl_property.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--max-minutes", type=float, default=600.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_acl")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    env = dict(
        os.environ, SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret"), DEBUG="false",
        SECURE_COOKIES="false", DATABASE_URL=args.database_url, REDIS_URL=args.redis_url, CELERY_BROKER_URL="",
        ACL_PROPERTY_EXAMPLES=str(args.batch),
    )
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    rng = random.Random()
    ran, batches, failures = 0, 0, []
    while ran < args.examples and time.monotonic() < deadline:
        seed = rng.randrange(2**32)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x", "--timeout=0", TEST,
                   f"--hypothesis-seed={seed}", "--create-db" if batches == 0 else "--reuse-db"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            failures.append({"seed": seed, "tail": (done.stdout + done.stderr)[-6000:]})
            print(f"batch {batches + 1} failed (seed {seed}):\n{failures[-1]['tail']}", file=sys.stderr, flush=True)
        batches += 1
        ran += args.batch
        print(f"batch {batches}: {ran} examples, {len(failures)} failed batches, "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(json.dumps({
        "benchmark": "acl_property",
        "examples_run": ran,
        "examples_asked": args.examples,
        "batches": batches,
        "batch_size": args.batch,
        "failed_batches": len(failures),
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
        "stopped_by_time_limit": ran < args.examples,
    }))


if __name__ == "__main__":
    main()
