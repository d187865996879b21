"""A model server that never finishes an answer: it streams a numbered word every few
milliseconds until its client goes away, and counts what it produced.

Tests use it to see Stop end generation *at the model server*: once the app closes the
connection, the server's next write fails, its loop ends, and `produced` stops growing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MOST_WORDS = 20_000  # a runaway answer: far more than any test waits for
WORD_SECONDS = 0.01


class _EndlessHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        body = json.dumps({"object": "list", "data": [{"id": "endless", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server = self.server
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        server.streaming.set()
        try:
            for n in range(MOST_WORDS):
                chunk = {"choices": [{"index": 0, "delta": {"content": f"word{n} "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                with server.lock:
                    server.produced += 1
                time.sleep(WORD_SECONDS)
        except OSError:  # the client closed the connection: generation ends here
            server.client_left.set()
        finally:
            server.finished.set()


class EndlessModel:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _EndlessHandler)
        self.server.produced = 0
        self.server.lock = threading.Lock()
        self.server.streaming = threading.Event()
        self.server.client_left = threading.Event()
        self.server.finished = threading.Event()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def produced(self) -> int:
        with self.server.lock:
            return self.server.produced

    def __getattr__(self, name):  # streaming, client_left, finished
        return getattr(self.server, name)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
