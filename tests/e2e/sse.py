"""A small client for the app over HTTP, as a browser would use it: session login,
CSRF header, and server-sent events read as they arrive."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class StreamedAnswer:
    tokens: list[str] = field(default_factory=list)
    token_times: list[float] = field(default_factory=list)
    done: dict | None = None
    error: dict | None = None
    started: float = 0.0

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def first_token_seconds(self) -> float | None:
        return self.token_times[0] - self.started if self.token_times else None


def login(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=120, follow_redirects=False)
    client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": f"{base_url}/accounts/login/"},
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"
    return client


def ask(client: httpx.Client, question: str, conversation_id: str | None = None) -> tuple[str, StreamedAnswer]:
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Referer": str(client.base_url)}
    if conversation_id is None:
        created = client.post("/chat/api/conversations/", json={}, headers=headers)
        assert created.status_code == 201, created.text
        conversation_id = created.json()["id"]
    submitted = client.post(f"/chat/api/c/{conversation_id}/messages/", json={"content": question}, headers=headers)
    assert submitted.status_code == 201, submitted.text
    answer = StreamedAnswer(started=time.monotonic())
    with client.stream("GET", submitted.json()["stream_url"], headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:])
                if event == "token":
                    answer.tokens.append(data["text"])
                    answer.token_times.append(time.monotonic())
                elif event == "done":
                    answer.done = data
                elif event == "error":
                    answer.error = data
    return conversation_id, answer
