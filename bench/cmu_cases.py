"""A run of CMU evaluation cases with the embedded model (SmolLM2-135M on llama.cpp, the
product's default), and the app's own time per case beyond the model's. Prints one JSON object.

1. The cases: `manage.py evaluate answers --corpus ... --qa ... --limit N --save-cases cmu` over
   the articles the N questions (the command's seeded sample) ask about. That step's answers
   come from a scripted server that answers at once: they only make the cases and index the
   corpus, and are not reported.
2. The run: `manage.py evaluate cases --tag cmu --profile "SmolLM2, short"` against llama.cpp's
   server with the bundled model, started here. The profile (LLM_MAX_TOKENS=64,
   RAG_CONTEXT_TOKENS=600) keeps a 2-core machine's run within the hour; it is stored with the run.

Per case, the app's own time is its total time less the time spent waiting on the model server
(assistant/evaluation/meter.py). Beside it: this process's CPU time per case (the app's: the
model runs in its own process, whose CPU time is reported apart) and the load average at the
start and end. Runs in a scratch database (created and migrated; kept with --keep, so its
/evaluation/ page shows the run). Usage:
    nice -n 5 .venv/bin/python bench/cmu_cases.py [--cases 50] [--json-out FILE] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.evaluation_cases import TARGET_MS, percentiles  # noqa: E402 - after the path is set
from bench.retrieval import bench_environment, create_database, drop_database  # noqa: E402

# ../shared/data/cmu-qa beside the checkout (or beside the folder of worktrees)
DATA = next((p / "shared" / "data" / "cmu-qa" for p in (ROOT.parent, ROOT.parent.parent)
             if (p / "shared" / "data" / "cmu-qa").is_dir()), ROOT.parent / "shared" / "data" / "cmu-qa")
PROFILE = {"LLM_MAX_TOKENS": 64, "RAG_CONTEXT_TOKENS": 600}
PROFILE_NAME = "SmolLM2, short"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """A child process's user + system CPU time so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def subset_corpus(docs: Path, qa: Path, *, limit: int, seed: int, folder: Path) -> tuple[Path, int]:
    """The corpus's lines for the articles the command's seeded sample of questions asks about."""
    from assistant.rag.evaluation.datasets import read_qa

    pairs = read_qa(qa)
    picked = [pairs[i] for i in random.Random(seed).sample(range(len(pairs)), min(limit, len(pairs)))]
    wanted = {p["doc_id"] for p in picked}
    out = folder / "cmu_qa_docs.jsonl"  # the same stem, so the same connector name as the full file
    kept = [line for line in docs.read_text().splitlines() if line.strip() and str(json.loads(line).get("_id")) in wanted]
    out.write_text("\n".join(kept) + "\n")
    return out, len(kept)


def save_cases(corpus: Path, qa: Path, limit: int) -> None:
    from django.core.management import call_command

    from tests.chat.scripted_llm import ScriptedModel, Say

    stub = ScriptedModel([Say("Stub.")])
    try:
        call_command("evaluate", "answers", "--corpus", str(corpus), "--qa", str(qa), "--limit", str(limit),
                     "--llm-url", stub.base_url, "--save-cases", "cmu", "--progress-seconds", "0",
                     stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    finally:
        stub.close()


def run_cases(base_url: str, server_pid: int) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from assistant.chat.answering import get_chat_client
    from assistant.evaluation.compare import run_report
    from assistant.evaluation.models import EvaluationRun
    from assistant.evaluation.profiles import profile_create
    from inference.model_server import MODEL_ALIAS

    settings.LLM_BASE_URL, settings.LLM_MODEL = base_url, MODEL_ALIAS
    get_chat_client.cache_clear()
    profile_create(name=PROFILE_NAME, values=PROFILE,
                   description="The bundled model on a small machine: short answers, 600 tokens of passages.")
    load_start, server_cpu = os.getloadavg(), _cpu_seconds(server_pid)
    cpu, wall = time.process_time(), time.perf_counter()
    call_command("evaluate", "cases", "--tag", "cmu", "--profile", PROFILE_NAME, "--label",
                 "CMU 50, SmolLM2-135M", stdout=sys.stderr, stderr=sys.stderr)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server_cpu, load_end = _cpu_seconds(server_pid) - server_cpu, os.getloadavg()
    run = EvaluationRun.objects.get(tag="cmu")
    results = list(run.results.all())
    app_ms = [r.total_ms - r.model_ms for r in results]
    return {
        "run": run_report(run),
        "app_ms_per_case": percentiles(app_ms), "app_ms_mean": round(statistics.mean(app_ms), 1),
        "model_ms_per_case": percentiles([r.model_ms for r in results]),
        "total_ms_per_case": percentiles([r.total_ms for r in results]),
        "first_token_ms": percentiles([r.first_token_ms for r in results if r.first_token_ms is not None]),
        "run_wall_s": round(wall, 1),
        # CPU time of this process (the app: pipeline, embedding of the question, database client,
        # scoring) and of the model server's process, per case
        "app_cpu_ms_per_case": round(cpu * 1000 / max(1, len(results)), 1),
        "model_server_cpu_ms_per_case": round(server_cpu * 1000 / max(1, len(results)), 1),
        "load_average_start": [round(x, 1) for x in load_start], "load_average_end": [round(x, 1) for x in load_end],
        "cpu_count": os.cpu_count(), "target_ms": TARGET_MS,
        "meets_target": statistics.median(app_ms) < TARGET_MS,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DATA, help="Folder of cmu_qa_docs.jsonl and cmu_qa_pairs.jsonl.")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_cmu_cases")
    parser.add_argument("--threads", type=int, default=1,
                        help="The model server's threads (default 1: on a shared, loaded machine two threads "
                             "wait on each other; measured 43 s against 6 s for the same 16 tokens at load 17).")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database (its /evaluation/ page).")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    create_database(args.database_url)
    scratch = tempfile.TemporaryDirectory()
    os.environ.update(bench_environment(args.database_url), CONNECTOR_DATA_DIR=scratch.name)
    import django

    django.setup()
    from inference.chat_client import wait_until_ready
    from inference.model_server import start_server

    port = _free_port()
    server = start_server(port=port, context_length=8192, threads=args.threads, log_path=str(Path(tempfile.gettempdir()) / "cmu-llama.log"))
    try:
        with scratch:
            qa = args.data / "cmu_qa_pairs.jsonl"
            corpus, articles = subset_corpus(args.data / "cmu_qa_docs.jsonl", qa, limit=args.cases, seed=args.seed,
                                             folder=Path(scratch.name))
            prepared = time.perf_counter()
            save_cases(corpus, qa, args.cases)
            prepared = time.perf_counter() - prepared
            wait_until_ready(f"http://127.0.0.1:{port}/v1", timeout=300)
            results = run_cases(f"http://127.0.0.1:{port}/v1", server.pid)
        from connectors.models import Chunk

        results["corpus"] = {"articles": articles, "chunks": Chunk.objects.count(), "cases_saved_in_s": round(prepared, 1)}
    finally:
        server.terminate()
        server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.database_url)
    report = {"benchmark": "cmu_cases", "model": "SmolLM2-135M-Instruct (llama.cpp, bundled)",
              "model_server_threads": args.threads,
              "profile": {"name": PROFILE_NAME, "settings": PROFILE}, **results,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    text = json.dumps(report, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
