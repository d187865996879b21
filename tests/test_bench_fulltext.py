"""bench/fulltext_beir.py ranks a BEIR corpus with the product's BM25, without embeddings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.test_bench_retrieval import scratch_database_url

ROOT = Path(__file__).resolve().parent.parent


def test_it_scores_the_full_text_side_of_a_beir_corpus(tmp_path):
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Tamoxifen", "text": "Tamoxifen lowers the risk of recurrence in breast cancer."},
        {"_id": "d2", "title": "Aspirin", "text": "Aspirin lowers the risk of heart attacks."},
        {"_id": "d3", "title": "Statins", "text": "Statins lower cholesterol and the risk of stroke."},
    ]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "Does tamoxifen lower the risk?"}) + "\n"
        + json.dumps({"_id": "q2", "text": "What lowers cholesterol?"}) + "\n"
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    server, url = scratch_database_url()
    try:
        finished = subprocess.run(
            [sys.executable, "bench/fulltext_beir.py", "--beir", str(beir), "--database-url", url],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert finished.returncode == 0, finished.stderr[-3000:]
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    assert report["queries"] == 2
    assert report["corpus"] == {"documents": 3, "chunks": 3, "load_s": report["corpus"]["load_s"]}
    assert report["metrics"]["ndcg@10"] == 1.0  # the rare word decides, not "lower" and "risk"
