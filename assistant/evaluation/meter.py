"""The model's share of an answer: time spent waiting on the model server and tokens exchanged.

`ModelMeter.attached(client)` wraps the chat client's `stream` for the duration of one answer,
so every call the answer makes (the plain path, each step of the agent loop) is counted. Only the
time spent waiting for the server's next piece counts as the model's; the rest is the app's.
Tokens are estimated (inference.tokens) since OpenAI-compatible streams do not report usage.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

from inference.tokens import approx_token_count


class ModelMeter:
    def __init__(self) -> None:
        self.model_s = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.calls = 0

    def _wrap(self, real):
        async def stream(messages, **params):
            self.calls += 1
            self.prompt_tokens += sum(approx_token_count(_text(m)) for m in messages)
            pieces = real(messages, **params).__aiter__()
            written: list[str] = []
            try:
                while True:
                    waited = time.monotonic()
                    try:
                        delta = await pieces.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        self.model_s += time.monotonic() - waited
                    written.append(delta.text or "")
                    written.extend(json.dumps(call) for call in delta.tool_calls or ())
                    yield delta
            finally:
                self.completion_tokens += approx_token_count("".join(written))
                await pieces.aclose()

        return stream

    @contextmanager
    def attached(self, client):
        client.stream = self._wrap(client.stream)
        try:
            yield self
        finally:
            client.__dict__.pop("stream", None)


def _text(message: dict) -> str:
    content = message.get("content") or ""
    calls = message.get("tool_calls") or ()
    return (content if isinstance(content, str) else json.dumps(content)) + "".join(json.dumps(c) for c in calls)
