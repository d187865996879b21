"""The model's turn of an answer on the retrieve-then-answer path: the fixed reply of a command,
or the model's streamed text. (Tool calls are the agent loop's: assistant/chat/agent_answer.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from assistant.chat.answer_setup import AnswerSetup
from inference.chat_client import StreamDelta


async def _reply_stream(text: str) -> AsyncIterator[StreamDelta]:
    yield StreamDelta(text=text, finish_reason="stop")


async def answer_stream(
    setup: AnswerSetup, client, prompt: list[dict], *, max_tokens: int
) -> AsyncIterator[StreamDelta]:
    """The answer's text deltas: the fixed reply, or the model's answer (no tools are offered)."""
    if setup.reply is not None:
        async for delta in _reply_stream(setup.reply):
            yield delta
        return
    stream = client.stream(prompt, **setup.stream_params(max_tokens=max_tokens))
    async with aclosing(stream):
        async for delta in stream:
            if delta.text:
                yield delta
