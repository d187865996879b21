"""A scripted OpenAI-compatible model server that plays tool-call sequences, for the agent loop.

Each request to /v1/chat/completions takes the next turn of the script: `Say(text)` streams text
word by word; `Call(...)` streams one or more function calls as real `tool_calls` deltas (the
arguments split in pieces across chunks, as vLLM sends them) and ends with finish_reason
"tool_calls". When the script runs out the last turn repeats (a model that never stops calling).
A request offered no `tools` gets `no_tools_reply` instead of a call, as a real server would.
Every request is recorded, so a test can check what the model was offered and shown.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

from tests.chat.fake_llm import _Handler

SOURCE_HEADER = re.compile(r'<source id="(\d+)" title="([^"]*)"')
CITE = re.compile(r"\{cite:([^}]*)\}")


def _cited(text: str, messages: list[dict]) -> str:
    numbers = {}
    for message in messages:
        for n, title in SOURCE_HEADER.findall(str(message.get("content") or "")):
            numbers[title] = n
    return CITE.sub(lambda m: f"[{numbers.get(m.group(1), '?')}]", text)


@dataclass(frozen=True)
class Say:
    """Text; `{cite:Title}` in it becomes `[n]`, n being the number that the prompt or a tool
    result gave the source block of that title (so an answer cites what it was really shown)."""

    text: str


@dataclass(frozen=True)
class Call:
    """Calls in one turn: (name, arguments as the model writes them: any text) pairs."""

    calls: tuple[tuple[str, str], ...]
    text: str = ""  # written before the calls (some models announce what they do)

    @classmethod
    def of(cls, *calls: tuple[str, str | dict], text: str = "") -> Call:
        return cls(tuple((n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls), text)


def _pieces(text: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class _ScriptedHandler(_Handler):
    def _event(self, delta: dict, finish_reason=None) -> None:
        chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.flush()

    def do_POST(self):  # noqa: N802
        arrived = time.perf_counter()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        server = self.server
        with server.lock:
            server.requests.append(body)
            turn = server.script[min(server.played, len(server.script) - 1)]
            if isinstance(turn, Call) and not body.get("tools"):
                turn = Say(server.no_tools_reply)
            else:
                server.played += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if isinstance(turn, Say):
            turn = Say(_cited(turn.text, body.get("messages", [])))
        try:
            self._play(turn, server)
        except OSError:  # the client hung up
            return
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        with server.lock:
            server.timings.append((arrived, time.perf_counter()))

    def _play(self, turn, server) -> None:
        for word in re.findall(r"\S+\s*", turn.text):
            self._event({"content": word})
        if isinstance(turn, Say):
            self._event({}, "stop")
            return
        for index, (name, arguments) in enumerate(turn.calls):
            with server.lock:
                server.call_count += 1
                call_id = f"chatcmpl-tool-{server.call_count}"
            first, *rest = _pieces(arguments)
            self._event({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                         "function": {"name": name, "arguments": first}}]})
            for piece in rest:
                self._event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        self._event({}, "tool_calls")


class ScriptedModel:
    def __init__(self, script: list, *, no_tools_reply: str = "From what I found: nothing more."):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedHandler)
        self.server.script = list(script)
        self.server.played = 0
        self.server.call_count = 0
        self.server.no_tools_reply = no_tools_reply
        self.server.requests = []
        self.server.timings = []  # (request arrived, last byte sent), perf_counter seconds, in order
        self.server.lock = threading.Lock()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict]:
        return self.server.requests

    def replay(self, script: list) -> None:
        """Start over with another script (and forget the requests)."""
        with self.server.lock:
            self.server.script, self.server.played = list(script), 0
            self.server.requests.clear()
            self.server.timings.clear()

    def offered(self, request: int) -> list[str]:
        """The tool names offered in a request ([] when it had no `tools`)."""
        return [t["function"]["name"] for t in self.requests[request].get("tools", [])]

    def tool_results(self, request: int) -> list[tuple[str, str]]:
        """The `tool` messages a request carried, in order: (the name of the tool called, content)."""
        messages = self.requests[request]["messages"]
        names = {c["id"]: c["function"]["name"] for m in messages for c in m.get("tool_calls") or ()}
        return [(names.get(m["tool_call_id"], "?"), m["content"]) for m in messages if m.get("role") == "tool"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def use_scripted_model(settings, script: list, **kwargs) -> ScriptedModel:
    """Point the app at a scripted model (call `close()` when done)."""
    from assistant.chat.answering import get_chat_client

    model = ScriptedModel(script, **kwargs)
    settings.LLM_BASE_URL = model.base_url
    settings.LLM_MODEL = "scripted"
    settings.LLM_TOOLS = True
    get_chat_client.cache_clear()
    return model
