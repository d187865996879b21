"""A web process with a small connection pool still streams many answers at once.

Streaming answers wait seconds to minutes on the model; if each kept its pooled database
connection meanwhile, a pool of 2 would serve 2 conversations and make the rest wait (then fail
with a pool timeout). The scripted model below answers nobody until every conversation has
reached it, so the test passes only if all of them got through with 2 connections.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer

import httpx
import pytest

from assistant.accounts.tokens import api_token_create
from tests.chat.fake_llm import _Handler
from tests.conftest import ARTIFACTS, ROOT, free_port, service_env, stop_process, wait_for_http

CONVERSATIONS = 5
POOL_SIZE = 2


class _MeetingHandler(_Handler):
    """Holds each streamed answer until CONVERSATIONS requests are waiting together."""

    def answer(self, messages):
        try:
            self.server.meeting.wait()
        except threading.BrokenBarrierError:
            return "Only some conversations reached the model."
        return "All conversations reached the model."


@pytest.fixture
def meeting_model():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MeetingHandler)
    server.requests = []
    server.meeting = threading.Barrier(CONVERSATIONS, timeout=90)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.meeting.abort()
    server.shutdown()
    server.server_close()


@pytest.fixture
def small_pool_server(transactional_db, meeting_model):
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = ARTIFACTS / "web-small-pool.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        cwd=ROOT,
        env=service_env(LLM_BASE_URL=meeting_model, LLM_MODEL="fake", DATABASE_POOL_SIZE=str(POOL_SIZE),
                        ALLOWED_HOSTS="127.0.0.1,localhost"),
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout=60, process=process, log=log)
        yield url
    finally:
        stop_process(process)


def _ask_streaming(url: str, token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        conversation = client.post("/api/v1/conversations", json={}).json()
        events = []
        with client.stream("POST", f"/api/v1/conversations/{conversation['id']}/messages",
                           json={"content": "Where is everyone?", "stream": True}) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                elif line.startswith("data:") and events and events[-1] == "done":
                    events.append(json.loads(line[5:])["answer"]["content"])
        return events


def test_more_conversations_stream_at_once_than_the_pool_has_connections(small_pool_server, owner):
    token = api_token_create(user=owner, name="pool test")[1]
    with ThreadPoolExecutor(CONVERSATIONS) as pool:
        results = list(pool.map(lambda _: _ask_streaming(small_pool_server, token), range(CONVERSATIONS)))
    for events in results:
        assert "done" in events, events
        assert events[-1] == "All conversations reached the model.", events
