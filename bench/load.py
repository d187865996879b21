"""Load: many users chatting through the app while a large sync runs.

    .venv/bin/python bench/load.py [--users 50] [--duration 120] [--documents 1000]

Starts the whole stack on loopback in a scratch database (created, then dropped) and its own
Redis database: the model server (llama.cpp with the bundled model, unless --llm-url names a
running one), the ASGI app under uvicorn, and two Celery workers (fetch, index). Generates
--documents small documents in a temporary folder connector and starts its sync; at the same
moment --users simulated users log in and chat as the browser does (create a conversation,
submit a question, read the answer over server-sent events, think, ask again) until
--duration seconds have passed. Answers still streaming then get --grace seconds to end.

The app runs at the product's own settings, LLM_TIMEOUT (120 s) included: a question the model
server has not answered within it is an error, like one still unanswered when the grace ends.
Prints one JSON object: errors (target zero) by kind (`answer_error_<kind>` for the app's
error events: timeout, unavailable, ...; `unanswered_at_end`; HTTP failures by status), with
an example of each, answers completed within LLM_TIMEOUT and their share of the questions,
time to first token (p50, p95: from submitting the question to the first streamed token),
and documents indexed during the window and in all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.processes import stop, wait_http  # noqa: E402 - after the path is set

TOPICS = ["leave", "travel", "security", "onboarding", "expenses", "facilities", "payroll", "benefits"]
QUESTIONS = [
    "How many days of annual leave do employees get?",
    "Which team books room {n} on Mondays?",
    "What is the travel per diem?",
    "Who do I contact about a security incident?",
    "What happens on the first day of onboarding?",
    "How are expenses reimbursed?",
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return round(ordered[index], 3)


def write_documents(folder: Path, count: int) -> None:
    rng = random.Random(7)
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        sentences = [
            f"# {topic.title()} note {i}",
            f"Room {i} of the {topic} wing is booked by team {i % 17} on Mondays.",
            f"The {topic} desk answers questions from {8 + i % 3}:00 to {16 + i % 3}:00.",
            " ".join(rng.choice(["Forms", "Requests", "Approvals", "Reports"]) + f" about {topic} go to the portal."
                     for _ in range(3)),
        ]
        (folder / f"{topic}-{i:04}.md").write_text("\n\n".join(sentences) + "\n")


class Stack:
    """The processes of the stack, started and stopped together."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=(self.logs / f"load-{name}.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        stop(*self.processes, grace=20)


class Results:
    def __init__(self):
        self.first_token: list[float] = []
        self.answer_seconds: list[float] = []
        self.completed = 0
        self.asked = 0
        self.unfinished = 0
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def error(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, detail[:300])


async def login(client: httpx.AsyncClient, username: str, password: str) -> None:
    await client.get("/accounts/login/")
    response = await client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": f"{client.base_url}accounts/login/"},
    )
    if response.status_code != 302:
        raise RuntimeError(f"login of {username} failed: {response.status_code}")


async def ask(client: httpx.AsyncClient, conversation: str, question: str, results: Results) -> None:
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    started = time.monotonic()
    results.asked += 1
    submitted = await client.post(f"/chat/api/c/{conversation}/messages/", json={"content": question}, headers=headers)
    if submitted.status_code != 201:
        results.error(f"submit_{submitted.status_code}", submitted.text)
        return
    first = None
    event = None
    outcome = None
    async with client.stream("GET", submitted.json()["stream_url"], headers={"Accept": "text/event-stream"}) as stream:
        if stream.status_code != 200:
            results.error(f"stream_{stream.status_code}")
            return
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if event == "token" and first is None:
                    first = time.monotonic() - started
                elif event in ("done", "error"):
                    outcome = (event, json.loads(line[5:]))
    if outcome is None:
        results.error("stream_ended_without_result")
    elif outcome[0] == "error":
        results.error(f"answer_error_{outcome[1].get('kind') or 'unknown'}", outcome[1].get("message", ""))
    elif outcome[1].get("status") != "complete":
        results.error(f"answer_{outcome[1].get('status')}")
    else:
        results.completed += 1
        results.answer_seconds.append(time.monotonic() - started)
        if first is not None:
            results.first_token.append(first)


async def sign_in(index: int, url: str, password: str, results: Results) -> tuple[httpx.AsyncClient, str] | None:
    """Log a user in and open a conversation (before the timed window: logins hash passwords)."""
    client = httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=30), follow_redirects=False)
    try:
        await login(client, f"user{index}", password)
        headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": url}
        created = await client.post("/chat/api/conversations/", json={}, headers=headers)
        return client, created.json()["id"]
    except Exception as exc:  # noqa: BLE001 - counted, reported
        results.error("login", f"{exc.__class__.__name__}: {exc}")
        await client.aclose()
        return None


async def chat(index: int, client: httpx.AsyncClient, conversation: str, stop_at: float, grace_at: float,
               results: Results) -> None:
    rng = random.Random(index)
    await asyncio.sleep(rng.uniform(0, 2))  # users do not all press Enter at once
    while time.monotonic() < stop_at:
        question = rng.choice(QUESTIONS).format(n=rng.randrange(1000))
        try:
            await asyncio.wait_for(ask(client, conversation, question, results), max(1, grace_at - time.monotonic()))
        except TimeoutError:
            results.unfinished += 1  # still waiting for the model when the grace ended: not answered
            results.error("unanswered_at_end", question)
            return
        except Exception as exc:  # noqa: BLE001
            results.error("request", f"{exc.__class__.__name__}: {exc}")
            await asyncio.sleep(1)
        await asyncio.sleep(rng.uniform(1, 3))  # reading the answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of chatting (the run stops itself)")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds answers in flight may take after that")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=64, help="LLM_MAX_TOKENS of the app")
    parser.add_argument("--llm-url", default="", help="an OpenAI-compatible server already running (else: embedded)")
    parser.add_argument("--llm-model", default="")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    if not 1 <= args.users <= 500 or not 1 <= args.duration <= 3600:
        sys.exit("--users must be 1-500 and --duration 1-3600 seconds")

    from bench.ingest import drop_database, prepare_environment

    logs = ROOT / "test-artifacts"
    logs.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="load-docs-"))
    password = "load-pass-123"
    prepare_environment(args)  # scratch database, migrated; this process's environment points at it
    stack = None
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User

        from assistant.celery import app
        from connectors.models import Connector, Document, SyncRun
        from connectors.services import connector_sync_start
        from inference.model_server import MODEL_ALIAS

        app.control.purge()
        write_documents(folder, args.documents)
        connector = Connector.objects.create(name="Intranet notes", kind="folder", config={"path": str(folder)},
                                             is_public=True)
        hashed = User(username="x")
        hashed.set_password(password)
        User.objects.bulk_create(User(username=f"user{i}", password=hashed.password) for i in range(args.users))

        llm_url, llm_model = args.llm_url.rstrip("/"), args.llm_model or MODEL_ALIAS
        env = dict(os.environ)
        stack = Stack(env, logs)
        if not llm_url:
            from inference.model_server import server_command

            port = free_port()
            llm = stack.spawn("llm", server_command(port=port, context_length=8192))
            llm_url = f"http://127.0.0.1:{port}/v1"
            wait_http(f"{llm_url}/models", timeout=180, process=llm)
        env.update(
            LLM_BASE_URL=llm_url, LLM_MODEL=llm_model, LLM_MAX_TOKENS=str(args.max_tokens),
            ALLOWED_HOSTS="127.0.0.1,localhost", SECURE_COOKIES="false", PYTHONUNBUFFERED="1",
        )
        web_port = free_port()
        web = stack.spawn("web", [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1",
                                  "--port", str(web_port), "--no-access-log"])
        url = f"http://127.0.0.1:{web_port}"
        common = ["--pool", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
        stack.spawn("fetch", [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", "sync,default",
                              "-n", "load-fetch@%h", *common])
        stack.spawn("index", [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", "index",
                              "-n", "load-index@%h", *common])
        wait_http(f"{url}/healthz", timeout=120, process=web)
        deadline = time.monotonic() + 120
        while len(app.control.ping(timeout=0.5)) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")

        results = Results()

        async def everyone() -> float:
            signed = []
            for start in range(0, args.users, 10):  # ten logins at a time
                signed += await asyncio.gather(
                    *(sign_in(i, url, password, results) for i in range(start, min(args.users, start + 10)))
                )
            began = time.monotonic()
            stop_at, grace_at = began + args.duration, began + args.duration + args.grace
            await asyncio.to_thread(lambda: runs.append(connector_sync_start(connector=connector)))
            await asyncio.gather(
                *(chat(i, pair[0], pair[1], stop_at, grace_at, results) for i, pair in enumerate(signed) if pair)
            )
            for pair in signed:
                if pair:
                    await pair[0].aclose()
            return began

        runs: list = []
        started = asyncio.run(everyone())
        run = runs[0]
        window_s = time.monotonic() - started
        indexed_in_window = Document.objects.filter(connector=connector, index_status="indexed").count()
        # The sync goes on after the chatting stops; wait (bounded) to report its total.
        sync_deadline = time.monotonic() + max(60.0, args.duration)
        while SyncRun.objects.filter(id=run.id, status__in=SyncRun.ACTIVE).exists() and time.monotonic() < sync_deadline:
            time.sleep(1)
        run.refresh_from_db()
        sync_s = ((run.finished_at - run.created_at).total_seconds() if run.finished_at else None)
        report = {
            "benchmark": "load",
            "users": args.users,
            "duration_s": args.duration,
            "window_s": round(window_s, 1),
            "max_tokens": args.max_tokens,
            "llm": llm_url if args.llm_url else "embedded llama.cpp (SmolLM2-135M, CPU)",
            "cpus": os.cpu_count(),
            "questions_asked": results.asked,
            "llm_timeout_s": settings.LLM_TIMEOUT,
            "answers_completed": results.completed,
            "answered_within_llm_timeout_share": round(results.completed / results.asked, 3) if results.asked else None,
            "answers_unfinished_at_end": results.unfinished,
            "errors": sum(results.errors.values()),
            "errors_by_kind": dict(results.errors),
            "error_examples": results.examples,
            "first_token_s_p50": percentile(results.first_token, 0.5),
            "first_token_s_p95": percentile(results.first_token, 0.95),
            "answer_s_p50": percentile(results.answer_seconds, 0.5),
            "answer_s_p95": percentile(results.answer_seconds, 0.95),
            "first_token_s_mean": round(statistics.fmean(results.first_token), 3) if results.first_token else None,
            "documents": args.documents,
            "documents_indexed_during_chat": indexed_in_window,
            "documents_indexed": Document.objects.filter(connector=connector, index_status="indexed").count(),
            "sync": {"status": run.status, "indexed": run.indexed, "failed": run.failed,
                     "seconds": round(sync_s, 1) if sync_s else None},
        }
    finally:
        if stack is not None:
            stack.stop()
        shutil.rmtree(folder, ignore_errors=True)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        drop_database(args)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
