"""A model server that writes its answer slowly (a word every `delay` seconds), for answers that
must still be streaming while a test reloads, stops, switches process or kills a worker. Requests
that do not stream (or ask for a title's few tokens) get a short reply at once."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import ThreadingHTTPServer

from tests.chat.fake_llm import _Handler

TITLE_TOKENS = 16  # the conversation's title is asked for with at most this many tokens


class _SlowHandler(_Handler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append(body)
        if not body.get("stream"):
            self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A title"},
                                          "finish_reason": "stop"}]})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        text = "A title" if body.get("max_tokens", 0) <= TITLE_TOKENS else self.server.answer
        try:
            for word in re.findall(r"\S+\s*", text):
                chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(self.server.delay)
            end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
        except OSError:  # the client hung up (Stop) or died
            pass


class SlowModel:
    def __init__(self, answer: str, *, delay: float = 0.05):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
        self.server.requests, self.server.answer, self.server.delay = [], answer, delay
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def answers_written(self) -> int:
        return len([r for r in self.server.requests if r.get("stream") and r.get("max_tokens", 0) > TITLE_TOKENS])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
