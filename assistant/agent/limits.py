"""What bounds one answer's use of tools: rounds of calls, time, each tool's time, each result's
size, and the room left in the model's window. Text the model reads about them is here too."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from inference.tokens import approx_token_count

#: Tools are offered only while a result of at least this size still fits the model's window.
MIN_RESULT_TOKENS = 200
_PIECE = re.compile(r"\w{1,4}|[^\w\s]", re.UNICODE)  # inference.tokens' word pieces

LIMIT_NOTES = {
    "steps": "You have used the tools as many times as one answer allows.",
    "time": "The time for using tools in this answer is over.",
    "context": "There is no room left for more tool results.",
}
FINAL_NOTE = (
    "{reason} Do not call tools. Answer the question now from the sources and tool results above, "
    "citing them like [1]; say plainly what you could not find."
)
CUT_NOTE = (
    "\n\n[The result was cut here: it was longer than {tokens} tokens. To see more, ask for a narrower "
    "part: read_document with a later part= (part=2, 3, …), or a more specific search.]"
)


@dataclass(frozen=True)
class AgentLimits:
    max_steps: int = 6
    time_budget: float = 120.0  # seconds for the whole answer's tool use
    tool_timeout: float = 20.0  # seconds for one call
    result_tokens: int = 1500  # the most of one result the model reads
    context_tokens: int | None = None  # the model's window less the answer's room; None: unchecked

    @classmethod
    def from_settings(cls, *, context_tokens: int | None = None) -> AgentLimits:
        return cls(
            max_steps=settings.AGENT_MAX_STEPS,
            time_budget=settings.AGENT_TIME_BUDGET_SECONDS,
            tool_timeout=settings.AGENT_TOOL_TIMEOUT_SECONDS,
            result_tokens=settings.AGENT_TOOL_RESULT_TOKENS,
            context_tokens=context_tokens,
        )


def messages_tokens(messages: list[dict]) -> int:
    """The approximate size of chat messages (their text, the calls' arguments, a little per message)."""
    total = 0
    for message in messages:
        total += 4 + approx_token_count(str(message.get("content") or ""))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += 8 + approx_token_count(function.get("name", "") + function.get("arguments", ""))
    return total


def cut_result(content: str, tokens: int) -> tuple[str, bool]:
    """`content` within `tokens` (inference.tokens' count), cut at a word piece with a note
    telling the model how to ask for more; and whether it was cut."""
    if approx_token_count(content) <= tokens:
        return content, False
    note = CUT_NOTE.format(tokens=tokens)
    keep = max(0, tokens - approx_token_count(note))
    end = 0
    for i, match in enumerate(_PIECE.finditer(content)):
        if i == keep:
            break
        end = match.end()
    return content[:end].rstrip() + note, True


def final_note(limit: str) -> dict:
    """The message that asks the model to answer without tools once a limit is reached."""
    return {"role": "user", "content": FINAL_NOTE.format(reason=LIMIT_NOTES.get(limit, ""))}
