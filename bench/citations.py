"""Precision and recall of the citation checker on the labelled (sentence, passage) pairs.

The checker (assistant/rag/citations.py, `verify_citations`) keeps an answer's [n] only when
passage n supports the sentence. docs/evaluation/citation_pairs.jsonl holds English and French
pairs written from the sample handbook: correct citations, same-topic and unrelated passages,
and sentences that misstate their passage (see assistant/rag/evaluation/citations.py).

Prints one JSON object: precision, recall and F1 overall and per language, the share of
markers kept per kind of pair, and the ids of the pairs it judged wrongly.

Usage: .venv/bin/python bench/citations.py [--pairs docs/evaluation/citation_pairs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    import django

    django.setup()
    from assistant.rag.evaluation.citations import PAIRS_PATH, load_pairs, score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS_PATH)
    args = parser.parse_args()
    pairs = load_pairs(args.pairs)
    started = time.perf_counter()
    report = score(pairs)
    report["pairs_file"] = str(args.pairs.resolve().relative_to(ROOT)) if args.pairs.resolve().is_relative_to(ROOT) \
        else str(args.pairs)
    report["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
