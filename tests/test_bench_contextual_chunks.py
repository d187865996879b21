"""bench/contextual_chunks.py measures each CHUNK_CONTEXT through `evaluate retrieval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.test_bench_retrieval import scratch_database_url

ROOT = Path(__file__).resolve().parent.parent


def test_it_reports_every_setting_and_its_difference_from_none(tmp_path):
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Tamoxifen", "text": "It lowers the risk of recurrence in breast cancer."},
        {"_id": "d2", "title": "Aspirin", "text": "It lowers the risk of heart attacks."},
        {"_id": "d3", "title": "Statins", "text": "They lower cholesterol and the risk of stroke."},
    ]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "tamoxifen"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    server, url = scratch_database_url()
    try:
        finished = subprocess.run(
            [sys.executable, "bench/contextual_chunks.py", "--datasets", "scifact", "--scifact", str(beir),
             "--contexts", "none,title", "--cache", str(tmp_path / "vectors.sqlite"), "--database-url", url],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        assert finished.returncode == 0, finished.stderr[-3000:]
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    report = json.loads(finished.stdout)
    runs = report["datasets"]["scifact"]["runs"]
    assert set(runs) == {"none", "title"}
    # The word "tamoxifen" is only in d1's title: full text finds it only when the title is indexed.
    assert runs["title"]["metrics"]["fulltext"]["recall@10"] == 1.0
    assert runs["none"]["metrics"]["fulltext"]["recall@10"] == 0.0
    assert report["datasets"]["scifact"]["minus_none"]["title"]["fulltext"]["recall@10"] == 1.0
    assert report["embedding_cache"]["misses"] == 7  # 3 chunks twice (with and without title), 1 question
