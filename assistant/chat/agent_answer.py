"""The agent path of an answer: where the model server supports tools (LLM_TOOLS) and the
assistant has tools to offer, the answer goes through the agent loop (assistant/agent/loop.py).

The question is still retrieved for once, up front, with half the material budget: it costs one
search the plain path makes anyway, a weak model that never calls a tool still answers from
sources, and a strong one starts from good passages (its searches are numbered after them, in
the same PassageBook, so every `[n]` of the answer points at what the model was shown).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing

from django.conf import settings

from assistant.agent.limits import AgentLimits
from assistant.agent.loop import AgentRun
from assistant.agent.registry import PassageBook, ToolContext
from assistant.chat.answer_setup import AnswerSetup
from assistant.chat.models import Message
from assistant.rag.query_sources import step_streamed

TOOLS_NOTE = (
    "You may call the tools offered to search and read the company's documents when the sources "
    "above are not enough. Their results number passages, and the results of database queries, the "
    "same way as the sources; cite them like [3]. Answer as soon as you have what you need."
)


def agent_run_start(
    *, message: Message, setup: AnswerSetup, prompt: list[dict], budget, passages: list, client,
    should_stop: Callable[[], Awaitable[bool]],
) -> AgentRun:
    """The loop for this answer, acting as the asking user with the assistant's connectors."""
    book = PassageBook()
    book.add(passages)  # numbered 1..n, as in the prompt
    context = ToolContext(
        user_id=setup.user_id, groups=setup.groups, filters=setup.filters, book=book,
        result_tokens=settings.AGENT_TOOL_RESULT_TOKENS, conversation_id=message.conversation_id,
    )
    system = {**prompt[0], "content": f"{prompt[0]['content']}\n\n{TOOLS_NOTE}"}
    return AgentRun(
        client=client, messages=[system, *prompt[1:]], tools=setup.tools, context=context,
        limits=AgentLimits.from_settings(context_tokens=budget.window - budget.answer),
        params=setup.stream_params(max_tokens=budget.answer), should_stop=should_stop,
    )


async def agent_events(
    message: Message, run: AgentRun, written, save: Callable[..., Awaitable[None]]
) -> AsyncIterator[tuple[str, dict]]:
    """The loop's text as `token` events (recorded in `written`) and its calls as `step` events;
    each finished call is saved with the message at once (a reload mid-answer shows it)."""
    started = time.monotonic()
    async with aclosing(run.events()) as events:
        async for kind, value in events:
            if kind == "text":
                first = None if written.parts else int((time.monotonic() - started) * 1000)
                written.parts.append(value)
                yield "token", {"text": value}
                if first is not None:  # saved once the token is on its way to the reader
                    await save(message, first_token_ms=first)
            else:
                yield "step", step_streamed(value)
                if value["status"] != "running":
                    await save(message, steps=run.step_dicts())
    written.stopped = run.stopped
