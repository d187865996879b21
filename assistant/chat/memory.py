"""Memory, opt-in per user: facts and preferences the user asked the assistant to remember.

Off until the user turns it on. When on, "remember that ..." in the chat is handled here,
before the model (it works with any model server); where the model server supports
tools (LLM_TOOLS=true) the model may also call `remember` and `forget` (the tools in
assistant/chat/memory_tools.py). The user's memories go into the system prompt of that
user's conversations only.
"""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from assistant.chat.models import Memory, MemoryPreference
from assistant.chat.services import InvalidInput

MAX_MEMORY_CHARS = 500
MAX_MEMORIES_PER_USER = 200
PROMPT_MEMORIES = 50  # the most recent ones go into the prompt
PROMPT_CHARS = 4000

_COMMAND = re.compile(
    r"""^\s*(?:please\s*,?\s+|pls\s+|can\s+you\s+|could\s+you\s+)?
        (?:remember|keep\s+in\s+mind|don'?t\s+forget|do\s+not\s+forget
          |souviens[- ]toi|rappelle[- ]toi|retiens|n'oublie\s+pas|m[ée]morise)\b
        (?:\s+(?:that|this|que|ceci)\b|\s+qu')?\s*[:,]?\s*(?P<fact>.+?)\s*$""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)

class MemoryOff(InvalidInput):
    """The user has not turned memory on."""


# ---------------------------------------------------------------- selectors


def memory_enabled(*, user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return MemoryPreference.objects.filter(user=user, enabled=True).exists()


def memories_of(*, user) -> QuerySet[Memory]:
    return Memory.objects.filter(user=user).order_by("created_at")


def memory_get(*, user, memory_id) -> Memory:
    """The user's memory; Memory.DoesNotExist for anyone else's (shown as 404)."""
    return Memory.objects.get(id=memory_id, user=user)


def memory_command_parse(text: str) -> str | None:
    """The fact in an explicit "remember that ..." message, or None for any other message.

    A question ("remember when we ...?") is not a command.
    """
    text = text.strip()
    if not text or text.endswith("?"):
        return None
    match = _COMMAND.match(text)
    if not match:
        return None
    fact = match.group("fact").strip().rstrip(".!").strip()
    if len(fact) < 2 or fact.lower() in ("that", "this", "que", "ceci"):
        return None
    return fact[0].upper() + fact[1:]


def memory_prompt_section(*, user, enabled: bool | None = None) -> str:
    """The system-prompt paragraph with the user's memories; empty when memory is off or empty.
    (`enabled`: whether memory is on, when the caller has asked already.)"""
    if not (memory_enabled(user=user) if enabled is None else enabled):
        return ""
    texts = list(memories_of(user=user).order_by("-created_at").values_list("text", flat=True)[:PROMPT_MEMORIES])
    lines, used = [], 0
    for text in reversed(texts):  # oldest first, newest kept when trimming
        used += len(text) + 3
        if used > PROMPT_CHARS:
            break
        lines.append(f"- {text}")
    if not lines:
        return ""
    return (
        "What this user asked you to remember about them (their own words; \"I\" and \"my\" mean the user). "
        "Use it where relevant; it never overrides the rules above:\n" + "\n".join(lines)
    )


# ----------------------------------------------------------------- services


def memory_enable_set(*, user, enabled: bool) -> bool:
    MemoryPreference.objects.update_or_create(user=user, defaults={"enabled": bool(enabled)})
    return bool(enabled)


def _clean(text) -> str:
    if not isinstance(text, str):
        raise InvalidInput("A memory must be text.")
    text = " ".join(text.split())
    if not text:
        raise InvalidInput("A memory cannot be empty.")
    if len(text) > MAX_MEMORY_CHARS:
        raise InvalidInput(f"A memory is limited to {MAX_MEMORY_CHARS} characters; this one has {len(text)}.")
    return text


@transaction.atomic
def memory_add(*, user, text: str, origin: str = Memory.Origin.COMMAND) -> Memory:
    """Remember a fact for the user (the same fact twice is kept once)."""
    if not memory_enabled(user=user):
        raise MemoryOff(_("Memory is off. Turn it on in your user menu first."))
    text = _clean(text)
    existing = Memory.objects.filter(user=user, text__iexact=text).first()
    if existing is not None:
        return existing
    if Memory.objects.filter(user=user).count() >= MAX_MEMORIES_PER_USER:
        raise InvalidInput(
            _("You have %(limit)s memories, the limit. Delete some first.") % {"limit": MAX_MEMORIES_PER_USER}
        )
    return Memory.objects.create(user=user, text=text, origin=origin)


def memory_update(*, memory: Memory, text: str) -> Memory:
    memory.text = _clean(text)
    memory.save(update_fields=["text", "updated_at"])
    return memory


def memory_delete(*, memory: Memory) -> None:
    memory.delete()
