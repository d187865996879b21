"""A stand-in for the model server's client, at unit level only: it records what it is
asked (messages and parameters) and answers with fixed deltas, or fails."""

from __future__ import annotations

from inference.chat_client import StreamDelta


class FakeChatClient:
    def __init__(self, replies: list[list[StreamDelta]] | None = None, error: Exception | None = None):
        self.replies = list(replies or [[StreamDelta(text="Here "), StreamDelta(text="it is.")]])
        self.error = error
        self.calls: list[tuple[list[dict], dict]] = []

    def list_models(self) -> list[dict]:
        return []

    async def stream(self, messages, **params):
        self.calls.append((messages, params))
        if self.error is not None:
            raise self.error
        deltas = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        for delta in deltas:
            yield delta

    def system_prompt(self, call: int = 0) -> str:
        return self.calls[call][0][0]["content"]

    def user_turn(self, call: int = 0) -> str:
        return self.calls[call][0][-1]["content"]


def use_fake_client(monkeypatch, fake: FakeChatClient) -> FakeChatClient:
    from assistant.chat import answering

    monkeypatch.setattr(answering, "get_chat_client", lambda: fake)
    return fake
