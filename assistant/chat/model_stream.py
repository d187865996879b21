"""The model's turn of an answer: the fixed reply of a command, or the model's streamed text,
carrying out its `remember` function calls where tools are on (then asking it again, without
tools, when it wrote nothing with the call)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from asgiref.sync import sync_to_async

from django.contrib.auth import get_user_model

from assistant.chat.answer_setup import AnswerSetup
from assistant.chat.memory import memory_add, remember_tool_facts
from assistant.chat.models import Memory
from assistant.chat.services import InvalidInput
from inference.chat_client import StreamDelta

logger = logging.getLogger(__name__)


async def _reply_stream(text: str) -> AsyncIterator[StreamDelta]:
    yield StreamDelta(text=text, finish_reason="stop")


@sync_to_async
def _remember(user_id: int, facts: list[str]) -> list[str]:
    user = get_user_model().objects.get(pk=user_id)
    saved = []
    for fact in facts:
        try:
            saved.append(memory_add(user=user, text=fact, origin=Memory.Origin.TOOL).text)
        except InvalidInput as exc:
            logger.info("the model's remember call was not saved: %s", exc)
    return saved


def _merge_tool_calls(calls: dict[int, dict], fragments: list[dict]) -> None:
    """Streamed function calls arrive in pieces keyed by index; join their arguments."""
    for fragment in fragments:
        index = fragment.get("index", len(calls))
        call = calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        if fragment.get("id"):
            call["id"] = fragment["id"]
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] = function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]


async def answer_stream(
    setup: AnswerSetup, client, prompt: list[dict], *, max_tokens: int
) -> AsyncIterator[StreamDelta]:
    """The answer's text deltas: the fixed reply, or the model's answer.

    When the model calls `remember` (tools on), the facts are saved; if it wrote no text
    with the call, it is asked again with the call's result, without tools, to answer.
    """
    if setup.reply is not None:
        async for delta in _reply_stream(setup.reply):
            yield delta
        return
    calls: dict[int, dict] = {}
    wrote = False
    first = client.stream(prompt, **setup.stream_params(max_tokens=max_tokens))
    async with aclosing(first):
        async for delta in first:
            if delta.tool_calls:
                _merge_tool_calls(calls, delta.tool_calls)
            if delta.text:
                wrote = True
                yield delta
    if not calls:
        return
    tool_calls = [calls[index] for index in sorted(calls)]
    saved = await _remember(setup.user_id, remember_tool_facts(tool_calls)) if setup.user_id else []
    if wrote:
        return
    for i, call in enumerate(tool_calls):
        call["id"] = call["id"] or f"call_{i}"
    follow_up = [
        *prompt,
        {"role": "assistant", "content": "", "tool_calls": tool_calls},
        *(
            {
                "role": "tool",
                "tool_call_id": call["id"],
                "content": ("Saved: " + "; ".join(saved)) if saved else "Nothing was saved.",
            }
            for call in tool_calls
        ),
    ]
    params = setup.stream_params(max_tokens=max_tokens)
    params.pop("tools", None)
    params.pop("tool_choice", None)
    second = client.stream(follow_up, **params)
    async with aclosing(second):
        async for delta in second:
            if delta.text:
                yield delta
