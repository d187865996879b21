"""How index workers should use the cores: one process with N threads, or N processes with one each.

Each layout "PxT" starts P processes (as Celery's prefork pool does for the `index` queue), each
with the default embedder (ONNX Runtime, EMBEDDING_ONNX_PRECISION) at T intra-op threads; they load
the model, wait at a barrier, then embed their share of the same passages (SciFact abstracts of
about 200 words) in tasks of EMBEDDING_BATCH_SIZE. Passages/s is all passages over the time from
the barrier to the last process's end. Layouts alternate round by round. Prints one JSON object.

    .venv/bin/python bench/embed_workers.py [--layouts 1x2,2x1,2x2] [--passages 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.embed import SCIFACT, load_texts  # noqa: E402
from bench.report import report_print  # noqa: E402


def worker(texts, threads, precision, cache_dir, task_size, barrier, results) -> None:
    from inference.onnx_embedder import OnnxEmbedder

    embedder = OnnxEmbedder(cache_dir=cache_dir, precision=precision, threads=threads)
    embedder.embed(texts[:4])  # load before the clock starts
    barrier.wait()
    cpu = time.process_time()
    for start in range(0, len(texts), task_size):
        embedder.embed(texts[start : start + task_size])
    results.put((time.monotonic(), time.process_time() - cpu))


def run_spawned(target, args_per_process: list[tuple]) -> tuple[float, float]:
    """Run `target(*args, barrier, results)` in one spawned process per args tuple, all starting
    together at a barrier; each puts (monotonic end, processor seconds) on `results`.
    Returns (seconds from the start to the last end, processor seconds of all of them)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(args_per_process) + 1), context.Queue()
    children = [context.Process(target=target, args=(*args, barrier, results)) for args in args_per_process]
    for child in children:
        child.start()
    barrier.wait()
    started = time.monotonic()
    ends = [results.get(timeout=3600) for _ in children]
    for child in children:
        child.join()
    return max(end for end, _ in ends) - started, sum(cpu for _, cpu in ends)


def run_layout(texts, processes, threads, args) -> dict:
    shares = [texts[i::processes] for i in range(processes)]
    seconds, cpu = run_spawned(
        worker, [(share, threads, args.precision, args.cache_dir, args.task_size) for share in shares]
    )
    return {"passages_per_s": len(texts) / seconds, "cpu_ms_per_passage": 1000 * cpu / len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", default="1x2,2x1,2x2", help="processes x threads, comma-separated")
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="int8", choices=("fp32", "int8"))
    parser.add_argument("--task-size", type=int, default=64, help="passages per index task (EMBEDDING_BATCH_SIZE)")
    parser.add_argument("--cache-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load_start = round(os.getloadavg()[0], 2)
    texts, _ = load_texts(SCIFACT, args.passages, 0)
    layouts = [tuple(int(n) for n in item.split("x")) for item in args.layouts.split(",")]
    samples = {f"{p}x{t}": [] for p, t in layouts}
    for _ in range(args.rounds):
        for processes, threads in layouts:
            samples[f"{processes}x{threads}"].append(run_layout(texts, processes, threads, args))
    results = {
        name: {
            "passages_per_s_median": round(statistics.median(s["passages_per_s"] for s in runs), 2),
            "passages_per_s_samples": [round(s["passages_per_s"], 2) for s in runs],
            "cpu_ms_per_passage_median": round(statistics.median(s["cpu_ms_per_passage"] for s in runs), 1),
        }
        for name, runs in samples.items()
    }
    best = max(results, key=lambda name: results[name]["passages_per_s_median"])
    report = {
        "benchmark": "embed_workers", "backend": f"onnx-{args.precision}", "passages": len(texts),
        "task_size": args.task_size, "rounds": args.rounds, "cpu_count": os.cpu_count(),
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "results": results, "fastest": best,
    }
    report_print(report, args.out)


if __name__ == "__main__":
    main()
