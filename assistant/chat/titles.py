"""Automatic conversation titles: a few words the model writes after the first answer.

The question, trimmed, is the title until then (and stays it when the model's suggestion
is unusable). A title the user typed is never replaced.
"""

from __future__ import annotations

import asyncio
import re

from asgiref.sync import sync_to_async

from assistant.chat.models import Conversation
from assistant.chat.services import TITLE_CHARS, conversation_title_set_automatic
from inference.chat_client import ChatClient, ModelServerError

TITLE_TIMEOUT_SECONDS = 20.0
TITLE_MAX_TOKENS = 16
TITLE_MAX_WORDS = 8
_SYSTEM = "You write short titles for conversations. Reply with a title of 2 to 5 words and nothing else."
# Two worked examples: even a small model then answers with a title, not an answer.
_EXAMPLES = (
    ("What is the password of the guest wifi?", "Guest wifi password"),
    ("How do I reset my VPN token?", "Resetting the VPN token"),
)
_PREFIX = re.compile(r"^\s*(?:\**\s*)?(?:title|titre)\s*[:\-–]\s*", re.IGNORECASE)
_STRIP = "\"'`*#_“”‘’«» \t.:;,-"
_NUMBER = re.compile(r"\d+")


def title_clean(raw: str, question: str = "") -> str:
    """The model's suggestion as a title, or "" when it is not usable as one (empty, a sentence,
    a question, or numbers the question does not contain: a small model's invented answer)."""
    for line in raw.splitlines():
        line = _PREFIX.sub("", line).strip(_STRIP)
        if line:
            break
    else:
        return ""
    line = " ".join(line.split())
    if len(line.split()) > TITLE_MAX_WORDS or len(line) < 3 or line.endswith("?"):
        return ""
    if not any(ch.isalpha() for ch in line):
        return ""
    if set(_NUMBER.findall(line)) - set(_NUMBER.findall(question)):
        return ""
    if len(line) > TITLE_CHARS:
        line = line[: TITLE_CHARS - 1].rstrip() + "…"
    return line[:1].upper() + line[1:]


def title_prompt(question: str) -> list[dict]:
    messages = [{"role": "system", "content": _SYSTEM}]
    for example, title in _EXAMPLES:
        messages += [{"role": "user", "content": f"Question: {example}"}, {"role": "assistant", "content": title}]
    messages.append({"role": "user", "content": f"Question: {' '.join(question.split())[:1000]}"})
    return messages


def needs_title(conversation: Conversation) -> bool:
    return conversation.title_source == Conversation.TitleSource.QUESTION


async def title_generate(*, client: ChatClient, conversation: Conversation, question: str, answer: str = "") -> str:
    """Ask the model for a title of the first question and store it (unless the user renamed the
    conversation meanwhile). The question alone names the topic; `answer` is not sent (a small
    model then writes an answer instead of a title).

    Returns the conversation's title afterwards. Model errors and timeouts keep the provisional
    title (the trimmed question), which is then final."""
    suggestion = ""
    try:
        raw = await asyncio.wait_for(
            client.complete(title_prompt(question), max_tokens=TITLE_MAX_TOKENS, temperature=0.2),
            TITLE_TIMEOUT_SECONDS,
        )
        suggestion = title_clean(raw, question)
    except (ModelServerError, TimeoutError):
        suggestion = ""
    await sync_to_async(conversation_title_set_automatic)(
        conversation=conversation, title=suggestion or conversation.title
    )
    await sync_to_async(conversation.refresh_from_db)(fields=["title", "title_source"])
    return conversation.title
