"""Ingestion throughput: sync a real corpus through the real Celery workers.

Default corpus: the PostgreSQL 15 HTML manual from Debian's `postgresql-doc-15`
(/usr/share/doc/postgresql-doc-15/html, about 1,170 pages; `--pages N` syncs a seeded sample
of N pages copied to a temporary folder). Prints one JSON object: documents/s and chunks/s of
the first sync, the ratio of chunks/s to the raw embedding throughput of the same model
measured in the same run (target >= 0.85), and the time of a re-sync with nothing changed
against the first sync (target <= 5%), with the load average and the processor time of the
workers beside the wall time.

The worker runs at the product's defaults (docker/entrypoint.sh, `make run`): one Celery worker
on the default, sync and index queues, prefork, WORKER_CONCURRENCY processes (default 2) at
EMBEDDING_THREADS=1 each. The raw baseline embeds the same chunks the same way: as many spawned
processes at one thread, each embedding its share in EMBEDDING_BATCH_SIZE calls, before and
after the first sync. `--profile` samples the worker's processes with py-spy during the first
sync (install it into the venv yourself; not a dependency) and adds where their processor time
went: fetch, parse, chunk, embed, database writes.

Runs in a scratch database (created and dropped) and its own Redis database.
Usage: .venv/bin/python bench/ingest.py [--docs DIR] [--pages 60] [--sample 1024] [--profile]

`--pathological` instead runs bench/parse_pathological.py: hostile file shapes (a CSV of
`a,` repeated, one huge line, many tiny lines, many columns, a huge cell, deeply nested
HTML, ...) parsed and chunked at 1 to 16 MB; processor seconds per MB must stay flat
(ratio_16_1 near 1). No database or worker needed.
"""

from __future__ import annotations

import argparse
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

from bench.report import report_print  # noqa: E402


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


def start_worker(queues: str, concurrency: int, log: Path) -> subprocess.Popen:
    """The product's worker (docker/entrypoint.sh): prefork, `concurrency` processes, one embedding thread each."""
    env = dict(os.environ, EMBEDDING_THREADS=os.environ.get("EMBEDDING_THREADS", "1"))
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", queues, "-n", "bench@%h",
         "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env,
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


def timed_sync(connector, worker):
    """The run, its wall seconds and the worker's processor seconds (all its processes)."""
    from connectors.services import connector_sync_start

    started, cpu_started = time.monotonic(), cpu_seconds(worker)
    run = wait_for(connector_sync_start(connector=connector).id)
    return run, time.monotonic() - started, cpu_seconds(worker) - cpu_started


def _embed_share(texts, batch, barrier, results) -> None:
    os.environ["EMBEDDING_THREADS"] = os.environ.get("EMBEDDING_THREADS", "1")
    import django

    django.setup()
    from connectors.indexing import get_embedder

    embedder = get_embedder()
    embedder.embed(texts[:4])  # load before the clock starts
    barrier.wait()
    cpu = time.process_time()
    for start in range(0, len(texts), batch):
        embedder.embed(texts[start : start + batch])
    results.put((time.monotonic(), time.process_time() - cpu))


def raw_embedding_rate(texts: list[str], processes: int) -> tuple[float, float]:
    """Chunks per second of the same embedder on the same texts, nothing else of ours running:
    `processes` spawned processes at one thread (the worker's layout), each embedding its share
    in EMBEDDING_BATCH_SIZE calls. Also the processor seconds one chunk costs, which a shared
    machine inflates far less than wall time."""
    from django.conf import settings

    from bench.embed_workers import run_spawned

    seconds, cpu = run_spawned(
        _embed_share, [(texts[i::processes], settings.EMBEDDING_BATCH_SIZE) for i in range(processes)]
    )
    return len(texts) / seconds, cpu / len(texts)


def cpu_seconds(worker: subprocess.Popen) -> float:
    """User + system processor time of the worker and its pool processes (all their threads) so far."""
    import psutil

    total = 0.0
    main = psutil.Process(worker.pid)
    for process in [main, *main.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def sample_pages(docs: str, pages: int) -> str:
    """A seeded sample of `pages` pages copied (with their times) to a temporary folder."""
    import shutil

    files = sorted(Path(docs).rglob("*.html"))
    random.Random(0).shuffle(files)
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    for path in files[:pages]:
        shutil.copy2(path, folder / path.name)
    return str(folder)


def sample_texts(docs: str, sample: int, pages: int) -> list[str]:
    """Chunks of the corpus as the index embeds them (same parser, chunker and context header),
    drawn from the chunks of `pages` pages (all of a --pages sample), so their lengths mix as the
    synced corpus's do: the first pages' chunks alone made the baseline's texts longer or shorter."""
    from connectors.indexing import chunks_prepare
    from connectors.parsing import ParseError, parse_document

    files = sorted(Path(docs).rglob("*.html"))
    random.Random(0).shuffle(files)
    texts: list[str] = []
    for path in files[:pages]:
        try:
            parsed = parse_document(path.read_bytes(), filename=path.name)
        except ParseError:  # a page the pipeline records as failed
            continue
        headings = [[h.offset, h.level, h.text] for h in parsed.headings]
        chunks = chunks_prepare(title=parsed.title or path.name, text=parsed.text, headings=headings)
        texts.extend(chunk.embedded for chunk in chunks)
    random.Random(0).shuffle(texts)
    return texts[:sample]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", default="/usr/share/doc/postgresql-doc-15/html")
    parser.add_argument("--pages", type=int, default=0, help="sync a seeded sample of this many pages (0: all)")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_ingest")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--sample", type=int, default=1024, help="chunks embedded for the raw baseline")
    parser.add_argument("--repeats", type=int, default=1, help="raw baseline rounds before and after the sync")
    parser.add_argument("--profile", action="store_true", help="py-spy the worker during the first sync")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--pathological", action="store_true", help="hostile file shapes: time per MB, 1-16 MB")
    parser.add_argument("--sizes", default="1,2,4,8,16", help="with --pathological: sizes in MB")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.pathological:
        command = [sys.executable, str(ROOT / "bench" / "parse_pathological.py"), "--sizes", args.sizes]
        sys.exit(subprocess.run(command, check=False).returncode)
    if not Path(args.docs).is_dir():
        sys.exit(f"{args.docs} is missing: apt-get install postgresql-doc-15 (or pass --docs DIR)")
    load_start, wall_start, cpu_start = os.getloadavg(), time.monotonic(), time.process_time()
    corpus = sample_pages(args.docs, args.pages) if args.pages else args.docs

    prepare_environment(args)
    import django

    django.setup()
    from django.conf import settings

    from assistant.celery import app
    from bench import ingest_profile
    from connectors.models import Chunk, Connector, Document

    app.control.purge()
    logs = ROOT / "test-artifacts"
    logs.mkdir(exist_ok=True)
    processes = int(os.environ.get("WORKER_CONCURRENCY") or settings.WORKER_CONCURRENCY)
    worker = start_worker("default,sync,index", processes, logs / "bench-worker.log")
    profile_out = logs / "bench-ingest-profile"
    recorders = None
    try:
        deadline = time.monotonic() + 120
        while len(app.control.ping(timeout=0.5)) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")
        connector = Connector.objects.create(
            name="PostgreSQL manual", kind="folder", config={"path": corpus}, is_public=True
        )
        # The raw baseline brackets the first sync, so a machine that is busier during one
        # part of the run skews the ratio less.
        texts = sample_texts(corpus, args.sample, args.pages or 200)
        before = [raw_embedding_rate(texts, processes) for _ in range(args.repeats)]
        if args.profile:
            import psutil

            for old in profile_out.parent.glob(profile_out.stem + ".*.txt"):
                old.unlink()
            recorders = ingest_profile.start([p.pid for p in psutil.Process(worker.pid).children()], profile_out)
        first, first_s, first_cpu = timed_sync(connector, worker)
        ingest_profile.stop(recorders)
        after = [raw_embedding_rate(texts, processes) for _ in range(args.repeats)]
        resync, resync_s, resync_cpu = timed_sync(connector, worker)
    finally:
        ingest_profile.stop(recorders)
        worker.terminate()
        worker.wait(timeout=60)

    documents = Document.objects.filter(connector=connector, index_status="indexed").count()
    chunks = Chunk.objects.filter(connector=connector).count()
    rates = [rate for rate, _ in before + after]
    raw = statistics.median(rates)
    raw_cpu_per_chunk = statistics.median(cpu for _, cpu in before + after)
    pipeline_chunks_per_s = chunks / first_s
    drop_database(args)
    report = {
        "benchmark": "ingest",
        "corpus": args.docs,
        "pages": args.pages or None,
        "worker": {"processes": processes, "embedding_threads": int(os.environ.get("EMBEDDING_THREADS") or 1),
                   "backend": f"{settings.EMBEDDING_BACKEND}-{settings.EMBEDDING_ONNX_PRECISION}",
                   "embedding_batch_size": settings.EMBEDDING_BATCH_SIZE,
                   "forward_batch_size": settings.EMBEDDING_FORWARD_BATCH_SIZE},
        "first_sync": {"status": first.status, "seen": first.seen, "added": first.added, "failed": first.failed,
                       "seconds": round(first_s, 2), "worker_cpu_seconds": round(first_cpu, 2)},
        "documents": documents,
        "chunks": chunks,
        "documents_per_s": round(documents / first_s, 3),
        "chunks_per_s": round(pipeline_chunks_per_s, 3),
        "raw_embedding_chunks": len(texts),
        "raw_embedding_chunks_per_s_median": round(raw, 3),
        "raw_embedding_chunks_per_s_samples": [round(r, 3) for r in rates],
        "chunks_per_s_vs_raw_embedding": round(pipeline_chunks_per_s / raw, 3),
        "cpu_ms_per_chunk": {"pipeline_worker": round(first_cpu / chunks * 1000, 2),
                             "raw_embedding": round(raw_cpu_per_chunk * 1000, 2)},
        "raw_vs_pipeline_cpu_per_chunk": round(raw_cpu_per_chunk / (first_cpu / chunks), 3),
        "resync": {"status": resync.status, "unchanged": resync.unchanged, "updated": resync.updated,
                   "seconds": round(resync_s, 2), "worker_cpu_seconds": round(resync_cpu, 2)},
        "resync_vs_first_sync": round(resync_s / first_s, 4),
        "resync_vs_first_sync_cpu": round(resync_cpu / first_cpu, 4),
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "bench_wall_seconds": round(time.monotonic() - wall_start, 1),
        "bench_process_cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    if args.profile:
        report["first_sync_worker_profile"] = ingest_profile.summarize(profile_out)
    report_print(report, args.out)


if __name__ == "__main__":
    main()
