"""Parsing and chunking of hostile file shapes: is the work linear in the input?

For each shape (a CSV of `a,` repeated, one huge line, many tiny lines, many columns, one
huge cell, deeply nested HTML, a table row of many cells, a line without spaces) and each
size (1, 2, 4, 8, 16 MB), parses and chunks the file in a fresh forked child and measures
processor seconds per MB (CPU time of that child: steady on a shared, busy machine, where
wall time is not) and the child's peak memory growth per MB. The caps are lifted for the
measurement (so the whole input is processed); `capped_seconds` is the time until the
default caps (PARSE_MAX_CHARS, INDEX_MAX_CHUNKS) stop the same 16 MB file.

Prints one JSON object; `ratio_16_1` is the 16 MB per-MB time over the 1 MB one (linear: ~1).
Usage: .venv/bin/python bench/parse_pathological.py [--sizes 1,2,4,8,16] [--shapes csv_a_comma,...]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
CHUNK_TOKENS, OVERLAP_TOKENS = 200, 30  # the settings' defaults
DEFAULT_MAX_CHARS, DEFAULT_MAX_CHUNKS = 10_000_000, 10_000


def _csv_many_columns(n: int) -> bytes:
    header = ",".join(f"col{i}" for i in range(1000)).encode() + b"\n"
    row = ",".join(str(i % 10) for i in range(1000)).encode() + b"\n"
    return header + row * max(1, (n - len(header)) // len(row))


SHAPES = {
    "csv_a_comma": (lambda n: b"a," * (n // 2), "columns.csv"),
    "csv_tiny_lines": (lambda n: b"a\n" * (n // 2), "lines.csv"),
    "csv_many_columns": (_csv_many_columns, "wide.csv"),
    "csv_huge_cell": (lambda n: b'notes\n"' + b"word " * (n // 5) + b'"\n', "cell.csv"),
    "txt_one_line_no_spaces": (lambda n: b"x" * n, "base64.txt"),
    "txt_tiny_lines": (lambda n: b"a\n" * (n // 2), "lines.txt"),
    "md_one_huge_line": (lambda n: b"lorem ipsum dolor " * (n // 18), "line.md"),
    "html_nested": (lambda n: b"<div>" * (n // 22) + b"deep" + b"</div>" * (n // 22), "nested.html"),
    "html_many_cells": (lambda n: b"<table><tr>" + b"<td>a</td>" * (n // 10) + b"</tr></table>", "row.html"),
}


def _memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _work(shape: str, size_mb: float, capped: bool) -> dict:
    """Parse and chunk one file in this (child) process; its time and memory growth."""
    from connectors.chunking import chunk_text
    from connectors.parsing import ParseError, parse_document

    try:
        from connectors.parsing import ParseLimits

        limits = {"limits": ParseLimits(max_chars=DEFAULT_MAX_CHARS if capped else 10**12)}
    except ImportError:  # the code before the caps existed (for a before/after comparison)
        limits = {}
    make, name = SHAPES[shape]
    content = make(int(size_mb * MB))
    base = _memory_kb("VmRSS:")
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome, chunks = "ok", 0
    try:
        text = parse_document(content, filename=name, isolate=False, **limits).text
        cap = {"max_chunks": DEFAULT_MAX_CHUNKS} if capped and limits else {}
        chunks = len(chunk_text(text, max_tokens=CHUNK_TOKENS, overlap_tokens=OVERLAP_TOKENS, **cap))
    except ParseError as exc:
        outcome = f"refused: {exc}"[:120]
    except ValueError as exc:  # ChunkLimitExceeded
        outcome = f"refused: {exc}"[:120]
    wall, seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"seconds": seconds, "wall_seconds": wall, "peak_mb": (_memory_kb("VmHWM:") - base) / 1024, "chunks": chunks, "outcome": outcome}


def measure(shape: str, size_mb: float, *, capped: bool = False) -> dict:
    """`_work` in a forked child, so each measurement starts from the same memory."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            payload = pickle.dumps(_work(shape, size_mb, capped))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = pickle.dumps({"error": repr(exc)})
        os.write(write_fd, payload)
        os._exit(0)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 1 << 16):
        data += chunk
    os.close(read_fd)
    os.waitpid(pid, 0)
    return pickle.loads(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,2,4,8,16")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    report: dict = {"sizes_mb": sizes, "chunk_tokens": CHUNK_TOKENS, "shapes": {}}
    for shape in args.shapes.split(","):
        runs = {size: measure(shape, size) for size in sizes}
        per_mb = {f"{size:g}": round(run["seconds"] / size, 3) for size, run in runs.items() if "seconds" in run}
        first, last = per_mb.get(f"{sizes[0]:g}"), per_mb.get(f"{sizes[-1]:g}")
        capped = measure(shape, sizes[-1], capped=True)
        report["shapes"][shape] = {
            "cpu_seconds_per_mb": per_mb,
            "wall_seconds": {f"{size:g}": round(run.get("wall_seconds", 0), 2) for size, run in runs.items()},
            "peak_mb_per_mb": {f"{size:g}": round(run.get("peak_mb", 0) / size, 1) for size, run in runs.items()},
            "chunks": {f"{size:g}": run.get("chunks") for size, run in runs.items()},
            "ratio_16_1": round(last / first, 2) if first and last else None,
            "capped_seconds": round(capped.get("seconds", 0), 2),
            "capped_outcome": capped.get("outcome") or capped.get("error"),
        }
        print(json.dumps({shape: report["shapes"][shape]}), file=sys.stderr, flush=True)  # progress
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
