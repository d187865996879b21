"""One OpenAI-compatible chat client (httpx) for every model server.

The embedded llama.cpp server and vLLM speak the same `/v1/chat/completions`
API, so the product has a single code path: streaming over server-sent events,
timeouts, retries on connection errors, and errors a user can read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

from inference.tls import tls_context


class ModelServerError(Exception):
    """The model server could not answer; the message is fit to show a user."""

    # kind: "unreachable" (down or not answering), "busy" (429/503), "context_too_long",
    # "broken" (cut off mid-answer), "refused" (a request the server will never accept), "failed".
    def __init__(
        self, message: str, *, retryable: bool = True, status_code: int | None = None, kind: str = "failed"
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.kind = kind


class ContextTooLongError(ModelServerError):
    def __init__(self, message: str = "The question and its sources are too long for the model's context window."):
        super().__init__(message, retryable=False, status_code=400, kind="context_too_long")


@dataclass
class StreamDelta:
    text: str = ""
    finish_reason: str | None = None
    tool_calls: list[dict] = field(default_factory=list)  # fragments of function calls, OpenAI style


@dataclass
class ChatClient:
    base_url: str
    model: str
    api_key: str = "none"
    timeout: float = 120.0
    connect_retries: int = 2
    default_params: dict = field(default_factory=dict)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Accept": "text/event-stream"}

    def _payload(self, messages: list[dict], stream: bool, params: dict) -> dict:
        payload = {"model": self.model, "messages": messages, "stream": stream}
        payload.update(self.default_params)
        payload.update({k: v for k, v in params.items() if v is not None})
        return payload

    def _timeout(self) -> httpx.Timeout:
        # Connecting must be quick; a long generation may pause between tokens.
        return httpx.Timeout(self.timeout, connect=min(5.0, self.timeout))

    async def stream(self, messages: list[dict], **params) -> AsyncIterator[StreamDelta]:
        """Yield text deltas as the model produces them.

        Connection failures before the first byte are retried with backoff; a
        failure after the answer started is raised, since the partial answer
        has already been shown.
        """
        payload = self._payload(messages, True, params)
        url = f"{self.base_url}/chat/completions"
        attempt = 0
        async with httpx.AsyncClient(timeout=self._timeout(), verify=tls_context()) as client:
            while True:
                try:
                    async with client.stream("POST", url, json=payload, headers=self._headers()) as response:
                        await _raise_for_status(response)
                        async for delta in _iter_sse_deltas(response):
                            yield delta
                        return
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    attempt += 1
                    if attempt > self.connect_retries:
                        raise ModelServerError(
                            "The model server is not reachable right now. Please try again in a moment.",
                            kind="unreachable",
                        ) from exc
                    await asyncio.sleep(0.25 * 2 ** (attempt - 1))
                except httpx.ReadTimeout as exc:
                    raise ModelServerError(
                        "The model server stopped responding (timed out).", kind="unreachable"
                    ) from exc
                except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    raise ModelServerError(
                        "The connection to the model server broke off mid-answer.", kind="broken"
                    ) from exc

    async def complete(self, messages: list[dict], **params) -> str:
        parts = [delta.text async for delta in self.stream(messages, **params)]
        return "".join(parts)

    def list_models(self) -> list[dict]:
        """The models the server offers (vLLM adds `max_model_len`)."""
        try:
            response = httpx.get(
                f"{self.base_url}/models", headers=self._headers(), timeout=self._timeout(), verify=tls_context()
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ModelServerError(f"Could not list models at {self.base_url}: {exc}") from exc
        return response.json().get("data", [])


async def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    body = (await response.aread()).decode("utf-8", "replace")[:2000]
    lowered = body.lower()
    if response.status_code == 400 and ("context" in lowered and ("length" in lowered or "window" in lowered)):
        raise ContextTooLongError()
    if response.status_code in (429, 503):
        raise ModelServerError(
            "The model server is busy. Please try again in a moment.", status_code=response.status_code, kind="busy"
        )
    if response.status_code >= 500:
        raise ModelServerError(f"The model server failed ({response.status_code}).", status_code=response.status_code)
    raise ModelServerError(
        f"The model server refused the request ({response.status_code}): {body[:300]}",
        retryable=False,
        status_code=response.status_code,
        kind="refused",
    )


async def _iter_sse_deltas(response: httpx.Response) -> AsyncIterator[StreamDelta]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            continue
        if "error" in event:
            message = event["error"].get("message") if isinstance(event["error"], dict) else str(event["error"])
            if message and "context" in message.lower():
                raise ContextTooLongError()
            raise ModelServerError(f"The model server reported an error: {message}")
        for choice in event.get("choices", []):
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            finish = choice.get("finish_reason")
            tool_calls = delta.get("tool_calls") or []
            if text or finish or tool_calls:
                yield StreamDelta(text=text, finish_reason=finish, tool_calls=tool_calls)


def wait_until_ready(base_url: str, *, timeout: float = 60.0) -> None:
    """Block until `GET /models` answers, or raise ModelServerError."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.25)
    raise ModelServerError(f"The model server at {base_url} did not start within {timeout:.0f}s ({last}).")
