"""Where the index worker's processor time goes, from py-spy's raw (collapsed) stacks.

bench/ingest.py runs `py-spy record --format raw` on the worker's processes during the first
sync; each line is "frame;frame;...;frame count", the outermost frame first. A sample belongs to
the first stage, in the order below, whose marker appears in its stack (the innermost call
decides nothing: the database writes of chunk storage are "db_writes" whether psycopg or Django
is on top). Idle samples are not recorded (py-spy without --idle).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

# stage: substrings of a frame ("function (path:line)") that put a sample in it, first match wins
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("embed_model", ("run (onnxruntime/",)),
    ("embed_tokenize", ("encode_ids (inference/onnx_session.py",)),
    ("embed_other", ("_embed_unless_cancelled", "embed (inference/")),
    ("db_writes", ("_store_chunks", "chunks_replace")),
    ("chunk", ("chunks_prepare", "chunk_text")),
    ("parse", ("parse_item", "parse_document")),
    ("fetch_read", ("iter_documents", "_read (connectors/sources")),
    ("fetch_store", ("_FetchJob",)),
    ("index_bookkeeping", ("index_documents_execute",)),
    ("celery_and_other", ("",)),
]


def start(pids: list[int], out: Path, rate: int = 25) -> subprocess.Popen | None:
    """Sample these processes (and their children) until `stop`; None when py-spy is missing."""
    binary = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy")
    if not Path(binary).exists():
        return None
    commands = []
    for pid in pids:
        commands.append(subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--nonblocking",
             "--output", str(out.with_suffix(f".{pid}.txt"))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))
    return commands


def stop(recorders) -> None:
    for recorder in recorders or []:
        recorder.send_signal(signal.SIGINT)
    for recorder in recorders or []:
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()


def summarize(out: Path) -> dict:
    """Share of the sampled processor time per stage, and the hottest functions of ours."""
    stages: Counter = Counter()
    ours: Counter = Counter()
    for path in out.parent.glob(out.stem + ".*.txt"):
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = stack.split(";")
            for stage, markers in STAGES:
                if any(marker in frame for frame in frames for marker in markers):
                    stages[stage] += int(count)
                    break
            leaf = next((f for f in reversed(frames) if "(connectors/" in f or "(inference/" in f), None)
            if leaf:
                ours[leaf.split(":")[0] + ")"] += int(count)
    total = sum(stages.values()) or 1
    return {
        "samples": total,
        "share": {stage: round(stages[stage] / total, 3) for stage, _ in STAGES if stages[stage]},
        "innermost_function_of_ours": {name: round(n / total, 3) for name, n in ours.most_common(12)},
    }
