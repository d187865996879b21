"""Time from question to first streamed token, through the running app.

Usage: python bench/first_token.py --url http://127.0.0.1:8000 --username admin --password PASS [--runs 5]
Each run asks a different handbook question in a new conversation, as the chat page
does (create conversation, submit, open the SSE stream), and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.sse import ask, login  # noqa: E402

QUESTIONS = [
    "How many days of paid annual leave do employees get?",
    "Who do I contact to report a security incident?",
    "What is the per diem for business travel?",
    "What are the opening hours of the Lyon office?",
    "What changed in the latest Atlas release?",
    "Do laptops need disk encryption?",
    "What is on the onboarding checklist for the first day?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    client = login(args.url, args.username, args.password)
    ask(client, "Warm-up question: what is this company called?")  # loads models, fills caches
    first_token, total, errors = [], [], 0
    for i in range(args.runs):
        _, answer = ask(client, QUESTIONS[i % len(QUESTIONS)])
        if answer.error or answer.first_token_seconds is None:
            errors += 1
            continue
        first_token.append(answer.first_token_seconds)
        total.append(answer.token_times[-1] - answer.started)
    print(json.dumps({
        "benchmark": "question_to_first_token",
        "url": args.url,
        "runs": args.runs,
        "errors": errors,
        "first_token_s_median": round(statistics.median(first_token), 3) if first_token else None,
        "first_token_s_samples": [round(x, 3) for x in first_token],
        "full_answer_s_median": round(statistics.median(total), 3) if total else None,
    }))


if __name__ == "__main__":
    main()
