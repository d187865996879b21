"""bench/retrieval.py runs end to end at a small scale and reports what the issue asks for."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def scratch_database_url() -> tuple[str, str]:
    db = settings.DATABASES["default"]
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    server = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return server, f"{server}/bench_retrieval_test_{secrets.token_hex(4)}"


def test_it_measures_latency_and_recall_at_small_scale():
    server, url = scratch_database_url()
    try:
        finished = subprocess.run(
            [sys.executable, "bench/retrieval.py", "--chunks", "3000", "--queries", "20", "--database-url", url],
            cwd=ROOT, capture_output=True, text=True, timeout=180,
        )
        assert finished.returncode == 0, finished.stderr[-3000:]
        with psycopg.connect(f"{server}/postgres") as conn:
            left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [url.rsplit("/", 1)[1]]).fetchone()
        assert left is None, "the scratch database was not dropped"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    lines = finished.stdout.strip().splitlines()
    assert len(lines) == 1, "the benchmark prints exactly one JSON object"
    report = json.loads(lines[0])

    assert report["benchmark"] == "retrieval"
    assert report["data"]["chunks"] == 3000
    assert report["data"]["dimensions"] == 384
    for name in ("hybrid_broad", "hybrid_selective", "dense_broad", "dense_selective", "fulltext_broad",
                 "fulltext_selective"):
        stats = report["latency_ms"][name]
        assert stats["n"] == 20
        assert 0 < stats["p50"] <= stats["p95"] <= stats["max"]
    for reader in ("broad", "selective"):
        assert report["recall"][reader]["recall_at_10"] >= 0.9
        assert report["recall"][reader]["queries"] == 20
    visible = report["data"]["visible_chunks"]
    assert visible["selective"] < 0.02 * 3000 < 0.5 * 3000 < visible["broad"]
    assert report["selective_results"]["hybrid_queries_with_fewer_than_k"] == 0
    assert report["selective_results"]["hybrid_min"] == 10
    assert not any("chunk_embedding_hnsw" in line for line in report["plans"]["exact_reference_broad"]["plan"])
    assert report["machine"]["pgvector_version"]
    assert set(report["load"]) >= {"copy_chunks_with_tsvector_s", "create_chunk_embedding_hnsw_s"}
    assert set(report["targets"]) >= {"recall_at_10_broad_ok", "hybrid_broad_p95_ok", "hybrid_selective_p95_ok"}
    # the product's index (halfvec, migration 0008), its build and size, and processor time per query
    assert "halfvec_cosine_ops" in report["data"]["hnsw"]["definition"]
    assert report["data"]["hnsw"]["size_bytes"] == report["data"]["sizes"]["chunk_embedding_halfvec_hnsw"]["bytes"] > 0
    assert report["machine"]["dense_index"] == "halfvec"
    assert any(any("chunk_embedding_halfvec_hnsw" in line for line in report["plans"][f"dense_{reader}"]["plan"])
               for reader in ("broad", "selective")), "the product's dense query never used the HNSW index"
    assert all(cost["client"] > 0 for cost in report["cpu_ms_per_query"].values())
