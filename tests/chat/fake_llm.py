"""A scripted OpenAI-compatible model server for API tests that must check exact answers.

It records every request, and answers from the sources it was given: a source block that
holds the vault code is quoted with its [n]; with no such block it says it found nothing.
So a test can assert both what the model was shown (the ACL) and what the client got back.
The real llama.cpp server is used where generation itself matters (tests marked `llm`).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "9038"
SOURCE_BLOCK = re.compile(r'<source id="(\d+)"[^>]*>(.*?)</source>', re.S)


def scripted_answer(messages: list[dict]) -> str:
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    for n, text in SOURCE_BLOCK.findall(prompt):
        if SECRET in text:
            return f"The server room vault code is {SECRET} [{n}]."
    return "I could not find that in the company's documents."


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def answer(self, messages: list[dict]) -> str:
        """The scripted reply; subclasses script other answers."""
        return scripted_answer(messages)

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append(body)
        answer = self.answer(body.get("messages", []))
        if not body.get("stream"):
            self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                          "finish_reason": "stop"}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in re.findall(r"\S+\s*", answer):
            chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


def serve_fake_llm(settings):
    """Point the app at the scripted server; yields the list of requests it received.
    Test modules wrap it in a `fake_llm` fixture."""
    from assistant.chat.answering import get_chat_client

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.LLM_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.LLM_MODEL = "fake"
    get_chat_client.cache_clear()
    yield server.requests
    get_chat_client.cache_clear()
    server.shutdown()
    server.server_close()


def index_kitchen_and_vault(tmp_path, engineering) -> None:
    """A public kitchen note, and a vault code only the engineering group may read, indexed."""
    from connectors.models import Connector, SyncRun
    from connectors.sync import sync_run_execute

    public_dir, secret_dir = tmp_path / "public", tmp_path / "secret"
    public_dir.mkdir()
    secret_dir.mkdir()
    (public_dir / "kitchen.md").write_text("# Kitchen rules\n\nThe dishwasher on floor 3 runs at 6 pm every day.\n")
    (secret_dir / "vault.md").write_text(f"# Vault access\n\nThe server room vault code is {SECRET}.\n")
    public = Connector.objects.create(name="Public", kind="folder", config={"path": str(public_dir)}, is_public=True)
    secret = Connector.objects.create(name="Secret", kind="folder", config={"path": str(secret_dir)})
    secret.groups.add(engineering)
    for connector in (public, secret):
        sync_run_execute(SyncRun.objects.create(connector=connector).id)
