"""Chat latency through the app, against the embedded model server. Prints one JSON object.

1. Time to first token (TTFT) through the app versus calling the model server directly with
   the same prompt. Each app request goes to POST /v1/chat/completions (streaming, with a
   personal token) and reaches the model server through a small recording proxy; the direct
   call then sends the model server exactly the body the app sent, straight, without the proxy.
   Before each measured request the model server's prompt cache is reset with an unrelated
   one-token request, so both sides pay the full prompt prefill. The app's own time is measured
   around the model server (request sent -> the proxy receives the app's call; the model's first
   token leaves the proxy -> it reaches the client). Target: under 50 ms at the median (the
   proxy's own hop counts against the app). Beside it: the web process's processor time to the
   first token (every thread, /proc), and where the time goes: each stage's median from the web
   process's own trace (connectors/stage_timing.py, bench/stage_trace.py): middleware, token
   check, conversation, the question's history, the assistant and memory, the question's
   embedding, the dense and full-text searches (the latter on a side connection meanwhile),
   fusion, the hits' rows, context assembly, the prompt, the request to the model server, the
   first token's save and its write to the client. With `--baseline-tree DIR` (another checkout,
   e.g. the commit before a change) a second web process runs that code on the same database and
   answers the same questions, alternating with this one: before and after in one run.
2. `--concurrency` conversations (default 50), each a different user with its own token,
   stream at once on one web process (one uvicorn worker): errors (target 0) and TTFT p50/p95.
   llama.cpp's server answers one request at a time, so TTFT there is mostly queueing at the
   model server; `first_byte` (the app's first chunk, sent before retrieval) shows the web
   process taking all the conversations at once.
3. `page_stream` (`--runner-runs`, default 9): the chat page's own stream with answers written by
   the web request and by the answers worker (ANSWER_RUNNER=worker: a Celery worker on queue
   "answer" and a Redis stream), alternated in the same run: the app's own time to the first token
   of each (bench/page_stream.py). Target: the worker adds no more than 20 ms at the median.

Runs in a scratch database (created and dropped) with the sample handbook indexed, its own
uvicorn and llama.cpp processes on free ports. Usage:
    .venv/bin/python bench/chat.py [--runs 7] [--concurrency 50] [--max-tokens 48] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.page_stream import Runner, measure_runners  # noqa: E402 - after the path is set
from bench.instant_model import InstantModel  # noqa: E402
from bench.processes import stop, wait_http  # noqa: E402
from bench.stage_trace import ENV as TRACE_ENV, cpu_seconds, medians, read_traces, request_breakdown  # noqa: E402
LOGS = ROOT / "test-artifacts"

QUESTIONS = [
    "How many days of paid annual leave do employees get?",
    "Who do I contact to report a security incident?",
    "What is the per diem for business travel?",
    "What are the opening hours of the Lyon office?",
    "What changed in the latest Atlas release?",
    "Do laptops need disk encryption?",
    "What is on the onboarding checklist for the first day?",
    "How do I book a business trip?",
    "Which offices does the company have?",
    "What should I do on my first day?",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


# --- the scratch installation ---------------------------------------------------------------------


def prepare_environment(args) -> None:
    os.environ.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        CELERY_BROKER_URL=args.redis_url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret"),
        DEBUG="false",
        SECURE_COOKIES="false",
        LOG_LEVEL="WARNING",
        LLM_MAX_TOKENS=str(args.max_tokens),
        CHAT_RATE_LIMIT="off",
        DJANGO_SETTINGS_MODULE="assistant.settings",
        CONNECTOR_DATA_DIR=str(ROOT / "samples" / "handbook"),  # as `make run` allows the demo folder
    )
    if args.context_tokens:
        os.environ["RAG_CONTEXT_TOKENS"] = str(args.context_tokens)
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


def seed(users: int) -> list[str]:
    """Index the sample handbook (public) and make `users` users with a token each."""
    from django.contrib.auth.models import User

    from assistant.accounts.tokens import api_token_create
    from assistant.celery import app
    from connectors.models import Connector, SyncRun
    from connectors.sync import sync_run_execute

    app.conf.task_always_eager = True  # index inline, no worker needed
    connector = Connector.objects.create(
        name="Company handbook", kind="folder", config={"path": str(ROOT / "samples" / "handbook")}, is_public=True
    )
    run = SyncRun.objects.create(connector=connector)
    sync_run_execute(run.id)
    tokens = []
    for i in range(users):
        user = User.objects.create_user(f"bench-{i}", password=None)
        tokens.append(api_token_create(user=user, name="bench")[1])
    return tokens


@dataclass
class App:
    """One web process under test: its URL, its pid (for its processor time) and its log (traces)."""

    url: str
    pid: int
    log: Path


def spawn(name: str, command: list[str], env: dict | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    LOGS.mkdir(exist_ok=True)
    return subprocess.Popen(
        command, cwd=cwd, env=env or dict(os.environ), stdout=(LOGS / f"bench-chat-{name}.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )


def web_process(name: str, tree: Path, env: dict, processes: list) -> App:
    """One uvicorn process of the app in `tree`, on a free port, answering."""
    port = free_port()
    process = spawn(name, [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1",
                           "--port", str(port), "--no-access-log", "--log-level", "warning"], env, cwd=tree)
    processes.append(process)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", timeout=120, process=process, hint=f"; see {LOGS}")
    return App(url, process.pid, LOGS / f"bench-chat-{name}.log")


# --- the recording proxy between the app and the model server -------------------------------------


def _has_content(line: str) -> bool:
    if not line.startswith("data:") or line[5:].strip() == "[DONE]":
        return False
    try:
        event = json.loads(line[5:])
    except json.JSONDecodeError:
        return False
    return any((c.get("delta") or {}).get("content") for c in event.get("choices", []))


class RecordingProxy:
    """Forwards every request to the model server as is (streamed), keeping chat request bodies."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.bodies: list[dict] = []
        self.records: list[dict] = []  # arrival and first-token-forwarded times of each chat request
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def _forward(self, method: str):
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
                record = None
                if body and self.path.endswith("/chat/completions"):
                    record = {"body": json.loads(body), "arrived": arrived, "first_token_out": None}
                    proxy.bodies.append(record["body"])
                    proxy.records.append(record)
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                with httpx.stream(method, proxy.upstream + self.path, content=body, headers=headers,
                                  timeout=httpx.Timeout(900, connect=5)) as response:
                    self.send_response(response.status_code)
                    self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
                    self.end_headers()
                    for line in response.iter_lines():
                        self.wfile.write(line.encode() + b"\n")
                        self.wfile.flush()
                        if record is not None and record["first_token_out"] is None and _has_content(line):
                            record["first_token_out"] = time.monotonic()

            def do_GET(self):  # noqa: N802
                self._forward("GET")

            def do_POST(self):  # noqa: N802
                self._forward("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- measuring ------------------------------------------------------------------------------------


def stream_ttft(client: httpx.Client, url: str, body: dict, headers: dict | None = None,
                started_at: list | None = None, seen: dict | None = None, on_first=None) -> tuple[float | None, str]:
    """Seconds from sending to the first non-empty content delta, and the whole text. `seen` gets
    the completion's `id`; `on_first()` runs as the first token arrives."""
    started = time.monotonic()
    if started_at is not None:
        started_at.append(started)
    first = None
    parts = []
    with client.stream("POST", url, json=body, headers=headers or {}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(event["error"])
            if seen is not None and "id" in event:
                seen.setdefault("id", event["id"])
            for choice in event.get("choices", []):
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    if first is None:
                        first = time.monotonic() - started
                        if on_first is not None:
                            on_first()
                    parts.append(text)
    return first, "".join(parts)


def reset_prompt_cache(client: httpx.Client, llm_url: str, model: str) -> None:
    """An unrelated one-token request: the server's cached prompt prefix no longer matches ours."""
    client.post(f"{llm_url}/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1, "stream": False,
    }).raise_for_status()


def _own_time(app: App, client: httpx.Client, proxy: RecordingProxy, token: str, question: str) -> dict | None:
    """One streamed answer through `app`: the app's own time around the model server (ms), its
    processor time to the first token, and what is needed to place its trace."""
    body = {"model": "enterprise-assistant", "messages": [{"role": "user", "content": question}], "stream": True}
    recorded, started, seen, cpu = len(proxy.records), [], {}, [cpu_seconds(app.pid)]
    first, _ = stream_ttft(client, f"{app.url}/v1/chat/completions", body, {"Authorization": f"Bearer {token}"},
                           started, seen, on_first=lambda: cpu.append(cpu_seconds(app.pid)))
    record = proxy.records[recorded]  # exactly what the app asked the model server, and when
    if first is None or record["first_token_out"] is None:
        return None
    # The app's own time, whatever the model's speed: request sent -> the app calls the model;
    # the model's first token -> it reaches the client.
    before = record["arrived"] - started[0]
    after = started[0] + first - record["first_token_out"]
    return {"answer": seen.get("id", "").removeprefix("chatcmpl-"), "body": record["body"], "ttft": first,
            "before": before, "after": after, "own": before + after, "cpu": cpu[-1] - cpu[0],
            "times": {"sent": started[0], "proxy_arrived": record["arrived"],
                      "proxy_first_token": record["first_token_out"], "client_first_token": started[0] + first}}


def _summary(rows: list[dict], app: App) -> dict:
    traces = read_traces(app.log)
    breakdown = [request_breakdown(traces[r["answer"]], **r["times"]) for r in rows if r["answer"] in traces]
    own = [r["own"] for r in rows]
    return {
        "app_own_ms_median": ms(statistics.median(own)) if own else None,
        "app_own_ms_samples": [ms(x) for x in own],
        "app_before_model_ms_median": ms(statistics.median(r["before"] for r in rows)) if rows else None,
        "app_after_first_token_ms_median": ms(statistics.median(r["after"] for r in rows)) if rows else None,
        "ttft_app_ms_median": ms(statistics.median(r["ttft"] for r in rows)) if rows else None,
        # The web process's processor time (every thread) from the request to its first token.
        "web_cpu_ms_median": ms(statistics.median(r["cpu"] for r in rows)) if rows else None,
        "web_cpu_ms_samples": [ms(r["cpu"]) for r in rows],
        "traced_answers": len(breakdown),
        "stages_ms_median": medians(breakdown),
        "traced_cpu_ms_median": round(statistics.median(
            traces[r["answer"]]["cpu_ms"] for r in rows if r["answer"] in traces), 2) if breakdown else None,
        "stages_cpu_ms_median": medians([traces[r["answer"]].get("stages_cpu_ms", {}) for r in rows
                                         if r["answer"] in traces]),
        "beside_ms_median": medians([traces[r["answer"]]["beside_ms"] for r in rows if r["answer"] in traces]),
    }


def measure_overhead(apps: dict[str, App], llm_url: str, proxy: RecordingProxy, token: str, model: str,
                     runs: int) -> dict:
    """`runs` questions through each app (alternating which goes first), and the model server asked
    directly with the body the first app sent, each after a prompt-cache reset."""
    client = httpx.Client(timeout=httpx.Timeout(600, connect=5))
    rows: dict[str, list[dict]] = {name: [] for name in apps}
    direct_ttft, diffs = [], []
    for i in range(runs):
        question = QUESTIONS[i % len(QUESTIONS)]
        order = list(apps) if i % 2 == 0 else list(reversed(apps))
        for name in order:
            reset_prompt_cache(client, llm_url, model)
            row = _own_time(apps[name], client, proxy, token, question)
            if row is not None:
                rows[name].append(row)
        first_app = next(iter(apps))
        if not rows[first_app] or rows[first_app][-1].get("direct") is not None:
            continue
        reset_prompt_cache(client, llm_url, model)
        direct_first, _ = stream_ttft(client, f"{llm_url}/chat/completions", rows[first_app][-1]["body"])
        if direct_first is not None:
            rows[first_app][-1]["direct"] = direct_first
            direct_ttft.append(direct_first)
            diffs.append(rows[first_app][-1]["ttft"] - direct_first)
    client.close()
    summaries = {name: _summary(rows[name], app) for name, app in apps.items()}
    main = summaries[next(iter(apps))]
    result = {
        "runs": runs,
        **main,
        "ttft_direct_ms_median": ms(statistics.median(direct_ttft)) if direct_ttft else None,
        "app_minus_direct_ms_median": ms(statistics.median(diffs)) if diffs else None,
        "app_minus_direct_ms_samples": [ms(d) for d in diffs],
        "target_own_ms": 50,
        "meets_target": main["app_own_ms_median"] is not None and main["app_own_ms_median"] < 50,
    }
    if len(apps) > 1:
        base_name = list(apps)[1]
        base = summaries[base_name]
        result[base_name] = base
        for key in ("app_own_ms_median", "web_cpu_ms_median"):
            if main[key] and base[key]:
                result[f"{key.removesuffix('_median')}_ratio_to_{base_name}"] = round(main[key] / base[key], 3)
    return result


async def one_conversation(client: httpx.AsyncClient, app_url: str, token: str, question: str, start: asyncio.Event):
    await start.wait()
    began = time.monotonic()
    first_byte = first_token = None
    parts, done, error = [], False, None
    body = {"model": "enterprise-assistant", "messages": [{"role": "user", "content": question}], "stream": True}
    try:
        async with client.stream("POST", f"{app_url}/v1/chat/completions", json=body,
                                 headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status_code != 200:
                return {"error": f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"}
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                if first_byte is None:
                    first_byte = time.monotonic() - began
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                event = json.loads(data)
                if "error" in event:
                    error = event["error"].get("message")
                    continue
                for choice in event.get("choices", []):
                    text = (choice.get("delta") or {}).get("content") or ""
                    if text:
                        first_token = first_token or time.monotonic() - began
                        parts.append(text)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    if error is None and not done:
        error = "stream ended without [DONE]"
    if error is None and not "".join(parts).strip():
        error = "empty answer"
    return {"error": error, "first_byte": first_byte, "first_token": first_token,
            "total": time.monotonic() - began}


async def measure_concurrency(app_url: str, tokens: list[str], deadline: float) -> dict:
    limits = httpx.Limits(max_connections=len(tokens) + 5, max_keepalive_connections=len(tokens) + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900, connect=10), limits=limits) as client:
        start = asyncio.Event()
        tasks = [
            asyncio.create_task(one_conversation(client, app_url, token, QUESTIONS[i % len(QUESTIONS)], start))
            for i, token in enumerate(tokens)
        ]
        began = time.monotonic()
        start.set()
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        results = [task.result() for task in done]
        wall = time.monotonic() - began
    errors = [r["error"] for r in results if r.get("error")]
    ttft = [r["first_token"] for r in results if r.get("first_token") is not None]
    first_byte = [r["first_byte"] for r in results if r.get("first_byte") is not None]
    return {
        "conversations": len(tokens),
        "web_processes": 1,
        "completed": len(results) - len(errors),
        "errors": len(errors),
        "unfinished_at_deadline": len(pending),
        "error_samples": errors[:5],
        "ttft_s_p50": round(percentile(ttft, 0.5), 3) if ttft else None,
        "ttft_s_p95": round(percentile(ttft, 0.95), 3) if ttft else None,
        "first_byte_ms_p50": ms(percentile(first_byte, 0.5)),
        "first_byte_ms_p95": ms(percentile(first_byte, 0.95)),
        "wall_s": round(wall, 2),
    }


def compare_runners(args, env: dict, app: App, proxy: RecordingProxy, llm_url: str,
                    processes: list[subprocess.Popen]) -> dict:
    """The chat page's stream from this web process (answers written by the request) and from a
    second one whose answers an answers worker writes (ANSWER_RUNNER=worker), in the same run."""
    from django.contrib.auth.models import User
    from inference.model_server import MODEL_ALIAS

    User.objects.create_user("bench-page", password="bench-page-pass-123")
    worker_env = dict(env, ANSWER_RUNNER="worker")
    answers = spawn("answers", [sys.executable, "-m", "celery", "-A", "assistant", "worker", "-Q", "answer",
                                "--pool", "threads", "--concurrency", "8", "--loglevel", "WARNING"], worker_env)
    processes.append(answers)
    web = web_process("web-worker-runner", ROOT, worker_env, processes)
    client = httpx.Client(timeout=httpx.Timeout(600, connect=5))
    runners = {"request": Runner(app.url, [app.pid], app.log),
               "worker": Runner(web.url, [web.pid, answers.pid], web.log, LOGS / "bench-chat-answers.log")}
    # A warm-up answer each (the embedding model loads in the worker and the new web process).
    measure_runners(runners, username="bench-page", password="bench-page-pass-123", proxy=proxy,
                    questions=QUESTIONS, runs=1, reset_cache=lambda: None)
    for runner in runners.values():
        runner.rows.clear()
    try:
        return measure_runners(runners, username="bench-page", password="bench-page-pass-123", proxy=proxy,
                               questions=QUESTIONS, runs=args.runner_runs,
                               reset_cache=lambda: reset_prompt_cache(client, llm_url, MODEL_ALIAS))
    finally:
        client.close()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup (children, database)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="TTFT pairs (app, direct) for the median")
    parser.add_argument("--concurrency", type=int, default=50, help="simultaneous streaming conversations; 0: skip")
    parser.add_argument("--max-tokens", type=int, default=48, help="longest answer (LLM_MAX_TOKENS of the app)")
    parser.add_argument("--context-tokens", type=int, default=None,
                        help="RAG_CONTEXT_TOKENS of the app (material in the prompt); default: the app's setting")
    parser.add_argument("--concurrency-deadline", type=float, default=900.0,
                        help="seconds after which unfinished conversations are counted and cancelled")
    parser.add_argument("--runner-runs", type=int, default=9,
                        help="answers per runner on the chat page's stream (request vs worker); 0: skip")
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="another checkout of the project (e.g. `git worktree add /tmp/base HEAD~3`): its web "
                             "process answers beside this one's, alternately, on the same database")
    parser.add_argument("--model", choices=("llama", "instant"), default="llama",
                        help="llama: SmolLM2 on llama.cpp; instant: a server that answers at once "
                             "(bench/instant_model.py), to look at the app's own stages quickly")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_chat")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()

    prepare_environment(args)
    import django

    django.setup()
    from inference.chat_client import wait_until_ready
    from inference.model_server import MODEL_ALIAS, server_command

    processes: list[subprocess.Popen] = []
    proxy = instant = None
    try:
        tokens = seed(max(1, args.concurrency))
        if args.model == "instant":
            instant = InstantModel(MODEL_ALIAS)
            llm_url = instant.url
        else:
            llm_port = free_port()
            llm_url = f"http://127.0.0.1:{llm_port}/v1"
            processes.append(spawn("llm", server_command(port=llm_port, context_length=8192)))
        wait_until_ready(llm_url, timeout=180)
        proxy = RecordingProxy(llm_url.removesuffix("/v1"))
        env = dict(os.environ, LLM_BASE_URL=f"{proxy.url}/v1", LLM_MODEL=MODEL_ALIAS,
                   ALLOWED_HOSTS="127.0.0.1,localhost", PYTHONUNBUFFERED="1", **TRACE_ENV)
        apps = {"current": web_process("web", ROOT, env, processes)}
        if args.baseline_tree:  # another checkout of the app (e.g. before a change), same database
            apps["baseline"] = web_process("web-baseline", args.baseline_tree.resolve(), env, processes)
        app_url = apps["current"].url
        for app in apps.values():  # warm-up: loads the embedding model in each web process, fills caches
            with httpx.Client(timeout=600) as warm:
                stream_ttft(warm, f"{app.url}/v1/chat/completions",
                            {"model": "enterprise-assistant", "stream": True,
                             "messages": [{"role": "user", "content": "What is this company called?"}]},
                            {"Authorization": f"Bearer {tokens[0]}"})

        result = {"benchmark": "chat", "model": MODEL_ALIAS if args.model == "llama" else "instant (bench/instant_model.py)",
                  "max_tokens": args.max_tokens,
                  "context_tokens": int(os.environ.get("RAG_CONTEXT_TOKENS") or 0) or "default",
                  "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
                  "baseline_tree": str(args.baseline_tree) if args.baseline_tree else None,
                  "first_token": measure_overhead(apps, llm_url, proxy, tokens[0], MODEL_ALIAS, args.runs)}
        result["load_average_after_first_token"] = [round(x, 2) for x in os.getloadavg()]
        print(json.dumps(result), file=sys.stderr, flush=True)  # the first part survives an interrupted run
        if args.runner_runs:
            result["page_stream"] = compare_runners(args, env, apps["current"], proxy, llm_url, processes)
            result["load_average_after_page_stream"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(result), file=sys.stderr, flush=True)
        if args.concurrency:
            result["concurrent"] = asyncio.run(
                measure_concurrency(app_url, tokens[: args.concurrency], args.concurrency_deadline)
            )
    finally:
        for process in reversed(processes):
            stop(process)
        if proxy is not None:
            proxy.close()
        if instant is not None:
            instant.close()
        from django.db import connections

        connections.close_all()
        drop_database(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
