"""Rebuilding the index while questions are asked: no failed search, and what it costs.

Builds an index of about --chunks chunks (synthetic documents: pseudo-words with a topic each)
through the product's index stage (`index_documents_execute`, the first build), then rebuilds
it with `index_rebuild_start` (the plan and its batches run inline in a thread, as one index
worker would run them) while --qps hybrid searches a second are asked by other threads, through
the switch and the deletion of the old version's chunks. Prints one JSON object:

- searches before and during the rebuild: count, failed (an exception, no hit, or hits of two
  index versions in one answer: must be 0), latency p50/p95;
- agreement: for each question asked during the rebuild, the share of its top 10 (document,
  ordinal) that the same question got before (the old version, then the new one built with the
  same recipe: near 1 unless the HNSW graph under two versions loses neighbours);
- rebuild seconds against the first build's seconds in the same run, with the process's CPU
  seconds beside each (the first build alone; the rebuild's includes the searches asked meanwhile);
- the load average (os.getloadavg, 1 minute) sampled every 15 s: at the start, per phase, at the end.

Runs in a scratch database (created and dropped). `--embedder hash` replaces the model with
deterministic pseudo-random vectors, to measure the machinery alone on a slow machine.
Usage: .venv/bin/python bench/index_rebuild.py [--chunks 15000] [--qps 10] [--embedder model|hash]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 14
K = 10


def prepare(database_url: str) -> None:
    import psycopg

    os.environ.update(
        DATABASE_URL=database_url, SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret"), DEBUG="false",
        LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="assistant.settings", CELERY_BROKER_URL="memory://",
    )
    name, admin = database_url.rsplit("/", 1)[1], database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop(database_url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    name, admin = database_url.rsplit("/", 1)[1], database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class HashEmbedder:
    """Deterministic unit vectors from each text's hash: the machinery's cost without a model."""

    def embed(self, texts):
        out = []
        for text in texts:
            rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))
            vector = rng.standard_normal(384)
            out.append((vector / np.linalg.norm(vector)).tolist())
        return out


def documents(target_chunks: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(title, text) of synthetic documents whose chunks add up to about `target_chunks`."""
    from connectors.indexing import chunk_document

    letters = np.array(list("abcdefghijklmnoprstuvw"))
    vocabulary = sorted({"".join(rng.choice(letters, rng.integers(4, 10))) for _ in range(6000)})
    weights = 1 / np.arange(1, len(vocabulary) + 1) ** 1.1
    weights /= weights.sum()
    out, chunks = [], 0
    while chunks < target_chunks:
        topic = list(rng.choice(vocabulary[500:], 6, replace=False))
        sentences = []
        for _ in range(120):
            words = list(rng.choice(vocabulary, 9, p=weights)) + list(rng.choice(topic, 3))
            rng.shuffle(words)
            sentences.append(" ".join(words).capitalize() + ".")
        title = f"{topic[0].capitalize()} {topic[1]} ({len(out)})"
        text = "\n\n".join(" ".join(sentences[i : i + 8]) for i in range(0, len(sentences), 8))
        out.append((title, text))
        chunks += len(chunk_document(text))
    return out


def first_build(docs) -> tuple[float, float, int]:
    """Store the documents, then index them through the product's index stage; (seconds, CPU seconds, chunks)."""
    from django.conf import settings

    from connectors.models import Chunk, Connector, Document, SyncRun
    from connectors.sync import index_batch_chars, index_documents_execute

    connector = Connector.objects.create(
        name="Synthetic", kind="folder", config={"path": "/nonexistent"}, is_public=True
    )
    run = SyncRun.objects.create(connector=connector, status=SyncRun.Status.RUNNING, fetch_done=True)
    Document.objects.bulk_create(
        Document(connector=connector, external_id=f"doc-{i:05}.md", title=title, text=text, content_hash=f"{i:064x}",
                 acl_public=True, pending_run=run)
        for i, (title, text) in enumerate(docs)
    )
    batches, batch, chars = [], [], 0
    for doc_id, text in Document.objects.order_by("id").values_list("id", "text"):
        batch.append(str(doc_id))
        chars += len(text)
        if chars >= index_batch_chars() or len(batch) >= settings.EMBEDDING_BATCH_SIZE:
            batches.append(batch)
            batch, chars = [], 0
    batches += [batch] if batch else []
    started, cpu_started, logged = time.monotonic(), time.process_time(), time.monotonic()
    for done, batch in enumerate(batches, 1):
        index_documents_execute(str(run.id), batch)
        if time.monotonic() - logged > 60:
            logged = time.monotonic()
            progress(f"first build: {done}/{len(batches)} batches, {Chunk.objects.count()} chunks, "
                     f"{logged - started:.0f} s, load {os.getloadavg()[0]:.1f}")
    return time.monotonic() - started, time.process_time() - cpu_started, Chunk.objects.count()


def questions(docs, embedder, rng, n: int = 60) -> list[tuple[str, list[float]]]:
    picked = [docs[i] for i in rng.choice(len(docs), min(n, len(docs)), replace=False)]
    texts = []
    for title, text in picked:
        words = text.split()
        start = int(rng.integers(0, max(1, len(words) - 6)))
        texts.append(" ".join(title.split()[:2] + words[start : start + 4]).replace(".", ""))
    return list(zip(texts, embedder.embed(texts), strict=True))


class Load:
    """Asks `qps` questions a second from a pool of threads; records each answer."""

    def __init__(self, qs, qps: float):
        self.qs, self.qps = qs, qps
        self.records: list[dict] = []
        self.lock = threading.Lock()
        self.phase = "before"

    def ask(self, index: int, phase: str) -> None:
        from django.db import connection

        from connectors.search import chunks_search

        text, embedding = self.qs[index % len(self.qs)]
        started = time.monotonic()
        record = {"phase": phase, "question": index % len(self.qs), "failed": None}
        try:
            hits = chunks_search(embedding=embedding, text=text, groups=[], k=K)
            versions = {hit.chunk.index_version for hit in hits}
            record["top"] = [(str(hit.chunk.document_id), hit.chunk.ordinal) for hit in hits]
            if not hits:
                record["failed"] = "no hit"
            elif len(versions) > 1:
                record["failed"] = f"mixed versions {sorted(versions)}"
        except Exception as exc:  # counted as a failed search
            record["failed"] = f"{exc.__class__.__name__}: {exc}"
            connection.close()
        record["seconds"] = time.monotonic() - started
        with self.lock:
            self.records.append(record)

    def run_until(self, stop: threading.Event, pool: ThreadPoolExecutor, start_index: int = 0) -> int:
        index, next_at = start_index, time.monotonic()
        while not stop.is_set():
            pool.submit(self.ask, index, self.phase)
            index += 1
            next_at += 1 / self.qps
            stop.wait(max(0.0, next_at - time.monotonic()))
        return index


def progress(message: str) -> None:
    """A line on stderr while it runs (the JSON alone goes to stdout)."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)

    return {"p50_ms": round(1000 * statistics.median(ordered), 1), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(1000 * ordered[-1], 1)}


class LoadAverage:
    """The machine's 1-minute load average every `every` seconds, tagged with the phase then."""

    def __init__(self, phase: list[str], every: float = 15.0):
        self.samples: list[tuple[str, float]] = []
        self.phase, self.every, self.stop = phase, every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def mark(self, phase: str) -> None:
        """A new phase begins: one sample now, then one every `every` seconds."""
        self.phase[0] = phase
        self.samples.append((phase, os.getloadavg()[0]))

    def _run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((self.phase[0], os.getloadavg()[0]))
            self.stop.wait(self.every)

    def summary(self) -> dict:
        out = {}
        for phase in dict.fromkeys(p for p, _ in self.samples):
            values = [v for p, v in self.samples if p == phase]
            out[phase] = {"samples": len(values), "median": round(statistics.median(values), 2),
                          "min": round(min(values), 2), "max": round(max(values), 2)}
        return out


def summary(records: list[dict], phase: str) -> dict:
    chosen = [r for r in records if r["phase"] == phase]
    failures = [r["failed"] for r in chosen if r["failed"]]
    return {"searches": len(chosen), "failed": len(failures), "failures": failures[:5],
            **percentiles([r["seconds"] for r in chosen])}


def agreement(records: list[dict]) -> float | None:
    before = {r["question"]: set(r["top"]) for r in records if r["phase"] == "before" and not r["failed"]}
    shares = [len(set(r["top"]) & before[r["question"]]) / max(1, len(before[r["question"]]))
              for r in records if r["phase"] == "during" and not r["failed"] and r["question"] in before]
    return round(statistics.mean(shares), 3) if shares else None


def rebuild(result: dict, done: threading.Event) -> None:
    from django.db import connection

    from connectors.index_version import live_index
    from connectors.rebuild import index_rebuild_start, retired_version_purge

    try:
        old = live_index().number
        started, cpu_started = time.monotonic(), time.process_time()
        version, _ = index_rebuild_start()  # tasks run inline (eager): plan, batches, switch
        result["rebuild_seconds"] = round(time.monotonic() - started, 1)
        result["rebuild_process_cpu_seconds"] = round(time.process_time() - cpu_started, 1)
        result["switched"] = live_index().number == version.number
        time.sleep(2)  # the grace before the old version's chunks go (searches begun on it finish)
        purge_started = time.monotonic()
        result["purged_chunks"] = retired_version_purge(old)
        result["purge_seconds"] = round(time.monotonic() - purge_started, 1)
    except Exception as exc:
        result["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        connection.close()
        done.set()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=15_000)
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--before-seconds", type=float, default=30.0)
    parser.add_argument("--embedder", choices=["model", "hash"], default="model")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/assistant_bench_rebuild")
    args = parser.parse_args(argv)
    prepare(args.database_url)
    try:
        return run(args)
    finally:
        drop(args.database_url)


def watch_rebuild(load: "Load", done: threading.Event) -> None:
    """A progress line a minute while the rebuild runs (what a partial run would report)."""
    from django.db import connection

    from connectors.models import IndexVersion

    while not done.wait(60):
        building = IndexVersion.objects.filter(state=IndexVersion.State.BUILDING).first()
        during = summary(load.records, "during")
        progress(f"rebuild: {building.chunks_done if building else '-'} chunks, "
                 f"{building.documents_done if building else '-'}/{building.documents_total if building else '-'} "
                 f"documents; searches {during['searches']}, failed {during['failed']}, "
                 f"p50 {during.get('p50_ms')} p95 {during.get('p95_ms')} ms; load {os.getloadavg()[0]:.1f}")
    connection.close()


def run(args) -> dict:
    from django.db import connection

    from django.conf import settings

    from assistant.celery import app
    from connectors import indexing
    from connectors.search.dense import pgvector_version

    app.conf.task_always_eager = True
    if args.embedder == "hash":
        indexing.get_embedder = lambda: HASH  # noqa: E731 - every module asks through this name
        import connectors.rebuild
        import connectors.sync

        connectors.sync.get_embedder = connectors.rebuild.get_embedder = indexing.get_embedder
    load_at_start, phase = os.getloadavg(), ["start"]
    load_average = LoadAverage(phase)
    load_average.thread.start()
    embedder = indexing.get_embedder()
    rng = np.random.default_rng(SEED)
    docs = documents(args.chunks, rng)
    embedder.embed(["warm up the model"])
    progress(f"{len(docs)} documents generated; first build")
    load_average.mark("first_build")
    build_seconds, build_cpu_seconds, chunks = first_build(docs)
    progress(f"first build: {chunks} chunks in {build_seconds:.1f} s ({build_cpu_seconds:.1f} s CPU)")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) connectors_chunk")
    qs = questions(docs, embedder, rng)
    load = Load(qs, args.qps)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="asker") as pool:
        stop = threading.Event()
        timer = threading.Timer(args.before_seconds, stop.set)
        timer.start()
        load_average.mark("searches_before")
        index = load.run_until(stop, pool)
        load.phase = "during"
        load_average.mark("searches_during_rebuild")
        progress(f"searches before: {summary(load.records, 'before')}; rebuilding")
        result: dict = {}
        done = threading.Event()
        threading.Thread(target=rebuild, args=(result, done), daemon=True).start()
        threading.Thread(target=watch_rebuild, args=(load, done), daemon=True).start()
        load.run_until(done, pool, index)
    load_average.mark("end")
    load_average.stop.set()
    load_average.thread.join()
    progress(f"rebuild: {result}")
    return {
        "benchmark": "index rebuild under load",
        "embedder": (
            f"{settings.EMBEDDING_MODEL} ({getattr(embedder, 'active', settings.EMBEDDING_BACKEND)}, in process, CPU)"
            if args.embedder == "model" else "hash (no model)"
        ),
        "pgvector": ".".join(map(str, pgvector_version())),
        "documents": len(docs),
        "chunks": chunks,
        "qps": args.qps,
        "first_build_seconds": round(build_seconds, 1),
        "first_build_process_cpu_seconds": round(build_cpu_seconds, 1),
        **result,
        "rebuild_vs_first_build": (
            round(result["rebuild_seconds"] / build_seconds, 2) if "rebuild_seconds" in result else None
        ),
        "before": summary(load.records, "before"),
        "during": summary(load.records, "during"),
        "agreement_top10_during_vs_before": agreement(load.records),
        "load_average_at_start": [round(v, 2) for v in load_at_start],
        "load_average_1min": load_average.summary(),
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "cpu_cores": os.cpu_count(),
        "embedding_threads": settings.EMBEDDING_THREADS or "runtime's choice",
        "embedding_batch_size": settings.EMBEDDING_BATCH_SIZE,
    }


HASH = HashEmbedder()

if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
