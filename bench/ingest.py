"""Ingestion throughput: sync a real corpus through the real Celery workers.

Default corpus: the PostgreSQL 15 HTML manual from Debian's `postgresql-doc-15`
(/usr/share/doc/postgresql-doc-15/html, about 1,170 pages). Prints one JSON object:
documents/s and chunks/s of the first sync, the ratio of chunks/s to the raw
embedding throughput of the same model measured in the same run (target >= 0.8),
and the time of a re-sync with nothing changed against the first sync (target < 5%).

Runs in a scratch database (created and dropped) and its own Redis database, with
two workers as in production: one for the fetch queue, one for the index queue.
Usage: .venv/bin/python bench/ingest.py [--docs DIR] [--sample 1024]

`--pathological` instead runs bench/parse_pathological.py: hostile file shapes (a CSV of
`a,` repeated, one huge line, many tiny lines, many columns, a huge cell, deeply nested
HTML, ...) parsed and chunked at 1 to 16 MB; processor seconds per MB must stay flat
(ratio_16_1 near 1). No database or worker needed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare_environment(args) -> None:
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CELERY_BROKER_URL=args.redis_url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret"),
        DEBUG="false",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="assistant.settings",
        # The benchmarks' corpora live in temporary folders and the shared data: the operator's
        # data roots must allow them, as an operator would for the folders they index.
        CONNECTOR_DATA_DIR=",".join([tempfile.gettempdir(), str(ROOT.parent / "shared" / "data"), str(ROOT / "samples")]),
    )
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)


def drop_database(args) -> None:
    import psycopg

    name = args.database_url.rsplit("/", 1)[1]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_worker(name: str, queues: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", queues, "-n", f"{name}@%h",
         "--pool", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_for(run_id, timeout: float = 3600):
    from connectors.models import SyncRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = SyncRun.objects.get(id=run_id)
        if run.status not in SyncRun.ACTIVE:
            return run
        time.sleep(0.2)
    raise TimeoutError(f"sync {run_id} did not finish in {timeout}s")


def timed_sync(connector):
    from connectors.services import connector_sync_start

    started = time.monotonic()
    run = wait_for(connector_sync_start(connector=connector).id)
    return run, time.monotonic() - started


def raw_embedding_rate(texts: list[str], repeats: int) -> tuple[list[float], float]:
    """Chunks per second of the same embedder on the same texts, nothing else of ours running.

    Also returns the CPU seconds one chunk costs, which a shared machine inflates far less
    than wall time.
    """
    from connectors.indexing import get_embedder

    embedder = get_embedder()
    embedder.embed(texts[:32])  # load the model
    rates, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.monotonic(), time.process_time()
        embedder.embed(texts)
        rates.append(len(texts) / (time.monotonic() - started))
        cpu.append((time.process_time() - cpu_started) / len(texts))
    return rates, statistics.median(cpu)


def cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """User + system CPU time of the worker processes (all their threads) so far."""
    import psutil

    total = 0.0
    for process in processes:
        times = psutil.Process(process.pid).cpu_times()
        total += times.user + times.system
    return total


def sample_texts(docs: str, sample: int) -> list[str]:
    """Chunks of the corpus made by the same parser and chunker, for the raw baseline."""
    from django.conf import settings

    from connectors.chunking import chunk_text
    from connectors.parsing import ParseError, parse_document

    files = sorted(Path(docs).rglob("*.html"))
    random.Random(0).shuffle(files)
    texts: list[str] = []
    for path in files:
        try:
            parsed = parse_document(path.read_bytes(), filename=path.name)
        except ParseError:  # a page the pipeline records as failed
            continue
        spans = chunk_text(parsed.text, max_tokens=settings.CHUNK_TOKENS, overlap_tokens=settings.CHUNK_OVERLAP_TOKENS)
        texts.extend(span.text for span in spans)
        if len(texts) >= sample:
            break
    random.Random(0).shuffle(texts)
    return texts[:sample]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", default="/usr/share/doc/postgresql-doc-15/html")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_ingest")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--sample", type=int, default=1024, help="chunks embedded for the raw baseline")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pathological", action="store_true", help="hostile file shapes: time per MB, 1-16 MB")
    parser.add_argument("--sizes", default="1,2,4,8,16", help="with --pathological: sizes in MB")
    args = parser.parse_args()
    if args.pathological:
        command = [sys.executable, str(ROOT / "bench" / "parse_pathological.py"), "--sizes", args.sizes]
        sys.exit(subprocess.run(command, check=False).returncode)
    if not Path(args.docs).is_dir():
        sys.exit(f"{args.docs} is missing: apt-get install postgresql-doc-15 (or pass --docs DIR)")

    prepare_environment(args)
    import django

    django.setup()
    from assistant.celery import app
    from connectors.models import Chunk, Connector, Document

    app.control.purge()
    logs = ROOT / "test-artifacts"
    logs.mkdir(exist_ok=True)
    workers = [
        start_worker("fetch", "sync,default", logs / "bench-fetch.log"),
        start_worker("index", "index", logs / "bench-index.log"),
    ]
    try:
        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=0.5)) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
        connector = Connector.objects.create(
            name="PostgreSQL manual", kind="folder", config={"path": args.docs}, is_public=True
        )
        # The raw baseline brackets the first sync, so a machine that is busier during one
        # part of the run skews the ratio less.
        texts = sample_texts(args.docs, args.sample)
        rates_before, raw_cpu_before = raw_embedding_rate(texts, args.repeats)
        cpu_started = cpu_seconds(workers)
        first, first_s = timed_sync(connector)
        pipeline_cpu = cpu_seconds(workers) - cpu_started
        rates_after, raw_cpu_after = raw_embedding_rate(texts, args.repeats)
        resync, resync_s = timed_sync(connector)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    documents = Document.objects.filter(connector=connector, index_status="indexed").count()
    chunks = Chunk.objects.filter(connector=connector).count()
    rates = rates_before + rates_after
    raw = statistics.median(rates)
    raw_cpu_per_chunk = statistics.mean([raw_cpu_before, raw_cpu_after])
    pipeline_chunks_per_s = chunks / first_s
    pipeline_cpu_per_chunk = pipeline_cpu / chunks
    drop_database(args)
    print(json.dumps({
        "benchmark": "ingest",
        "corpus": args.docs,
        "first_sync": {"status": first.status, "seen": first.seen, "added": first.added, "failed": first.failed,
                       "seconds": round(first_s, 2)},
        "documents": documents,
        "chunks": chunks,
        "documents_per_s": round(documents / first_s, 2),
        "chunks_per_s": round(pipeline_chunks_per_s, 2),
        "raw_embedding_chunks_per_s_median": round(raw, 2),
        "raw_embedding_chunks_per_s_samples": [round(r, 2) for r in rates],
        "chunks_per_s_vs_raw_embedding": round(pipeline_chunks_per_s / raw, 3),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "cpu_ms_per_chunk": {"pipeline_workers": round(pipeline_cpu_per_chunk * 1000, 2),
                             "raw_embedding": round(raw_cpu_per_chunk * 1000, 2)},
        "raw_vs_pipeline_cpu_per_chunk": round(raw_cpu_per_chunk / pipeline_cpu_per_chunk, 3),
        "resync": {"status": resync.status, "unchanged": resync.unchanged, "seconds": round(resync_s, 2)},
        "resync_vs_first_sync": round(resync_s / first_s, 4),
    }))


if __name__ == "__main__":
    main()
