"""What an answer is made of besides retrieval: the conversation's assistant (instructions,
connectors, model parameters), the user's memories, notices about sources still syncing,
and the "remember that ..." command answered without the model.

`answering.answer_events` calls `answer_setup` once, then streams through `answer_stream`,
which also carries out the model's `remember` function calls where tools are on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.translation import gettext as _

from assistant.chat.assistants import (
    ModelParameters,
    assistant_for_conversation,
    assistant_model_parameters,
    assistant_search_filters,
    connectors_still_syncing,
)
from assistant.chat.memory import (
    REMEMBER_TOOL,
    memory_add,
    memory_command_parse,
    memory_enabled,
    memory_prompt_section,
    remember_tool_facts,
)
from assistant.chat.models import Memory, Message
from assistant.chat.services import InvalidInput
from assistant.rag.prompts import system_prompt_for
from connectors.selectors import acl_groups_of
from connectors.search import SearchFilters
from inference.chat_client import StreamDelta

logger = logging.getLogger(__name__)


@dataclass
class AnswerSetup:
    assistant_name: str
    system_prompt: str
    filters: SearchFilters
    params: ModelParameters
    notices: list[str] = field(default_factory=list)
    reply: str | None = None  # set when the message is answered without the model
    remembered: str | None = None  # the fact saved by a "remember that ..." command
    tools: list[dict] = field(default_factory=list)
    user_id: int | None = None
    groups: list[str] = field(default_factory=list)  # the user's, for the ACL of retrieval

    def stream_params(self, *, max_tokens: int) -> dict:
        params = {"max_tokens": max_tokens, "temperature": self.params.temperature, "model": self.params.model}
        if self.tools:
            params.update(tools=self.tools, tool_choice="auto")
        return params


def _syncing_notice(names: list[str]) -> str:
    quoted = ", ".join(f"“{name}”" for name in names)
    if len(names) == 1:
        return _("The source %(names)s is still being indexed for the first time; this answer cannot use it yet.") % {
            "names": quoted
        }
    return _("The sources %(names)s are still being indexed for the first time; this answer cannot use them yet.") % {
        "names": quoted
    }


def _memory_reply(*, user, fact: str) -> tuple[str, str | None]:
    if not memory_enabled(user=user):
        return (
            _(
                "Memory is off, so I did not save this. Turn on “Memory” in your user menu "
                "(your name, bottom left), then say it again."
            ),
            None,
        )
    try:
        memory = memory_add(user=user, text=fact, origin=Memory.Origin.COMMAND)
    except InvalidInput as exc:
        return str(exc), None
    return _("Noted. I will remember: “%(fact)s”. You can see, edit or delete your memories under Memory.") % {
        "fact": memory.text
    }, memory.text


@sync_to_async
def answer_setup(*, message: Message, user, question: str, language: str = "") -> AnswerSetup:
    """Everything the answer to `question` needs from the assistant, the user's memory and the sources."""
    assistant = assistant_for_conversation(message.conversation)
    setup = AnswerSetup(
        assistant_name=assistant.name,
        system_prompt="",
        filters=assistant_search_filters(assistant=assistant),
        params=assistant_model_parameters(assistant=assistant),
        user_id=user.pk,
        groups=acl_groups_of(user),
    )
    fact = memory_command_parse(question)
    if fact is not None:
        setup.reply, setup.remembered = _memory_reply(user=user, fact=fact)
        return setup
    remembers = memory_enabled(user=user)
    setup.system_prompt = system_prompt_for(
        instructions=assistant.instructions,
        memories=memory_prompt_section(user=user, enabled=remembers),
        language=language,
    )
    if settings.LLM_TOOLS and remembers:
        setup.tools = [REMEMBER_TOOL]
    syncing = connectors_still_syncing(assistant=assistant, user=user, groups=setup.groups, filters=setup.filters)
    if syncing:
        setup.notices.append(_syncing_notice(syncing))
    return setup


async def _reply_stream(text: str) -> AsyncIterator[StreamDelta]:
    yield StreamDelta(text=text, finish_reason="stop")


@sync_to_async
def _remember(user_id: int, facts: list[str]) -> list[str]:
    from django.contrib.auth import get_user_model

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
