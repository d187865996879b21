"""The user's memory as tools the model may call: `remember(fact)` and `forget(memory)`.

They live in chat (they use assistant.chat.memory) and are registered from ChatConfig.ready.
They are offered only to a user who turned memory on (assistant/chat/answer_setup.py), whatever
the assistant's tool list says: memory is the user's own choice, not the admin's.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from pydantic import BaseModel, Field

from assistant.agent.registry import Tool, ToolContext, ToolError, ToolResult, register
from assistant.chat.memory import MAX_MEMORY_CHARS, memories_of, memory_add, memory_delete
from assistant.chat.models import Memory
from assistant.chat.services import InvalidInput

MEMORY_TOOL_NAMES = ("remember", "forget")


def _user(context: ToolContext):
    try:
        return get_user_model().objects.get(pk=context.user_id, is_active=True)
    except get_user_model().DoesNotExist:
        raise ToolError("There is no user to remember for.") from None


class RememberArguments(BaseModel):
    fact: str = Field(description="The fact, in one short sentence.", min_length=2, max_length=MAX_MEMORY_CHARS)


@register
class Remember(Tool):
    name = "remember"
    description = (
        "Save a lasting fact or preference the user stated about themselves or their work, "
        "so it can be used in their later conversations. Only when the user asks to remember."
    )
    Arguments = RememberArguments
    concurrent = False  # writes the user's memories: one at a time

    def label(self, arguments: RememberArguments) -> str:
        return _("Remembering “%(fact)s”…") % {"fact": arguments.fact}

    def run(self, context: ToolContext, arguments: RememberArguments) -> ToolResult:
        try:
            memory = memory_add(user=_user(context), text=arguments.fact, origin=Memory.Origin.TOOL)
        except InvalidInput as exc:
            raise ToolError(str(exc)) from None
        return ToolResult(content=f"Saved: {memory.text}", summary=_("Remembered “%(fact)s”") % {"fact": memory.text})


class ForgetArguments(BaseModel):
    memory: str = Field(description="The memory to delete: its text as listed, or words only it contains.",
                        min_length=2, max_length=MAX_MEMORY_CHARS)


@register
class Forget(Tool):
    name = "forget"
    description = "Delete one of the user's memories, when the user asks you to forget it."
    Arguments = ForgetArguments
    concurrent = False

    def label(self, arguments: ForgetArguments) -> str:
        return _("Forgetting “%(memory)s”…") % {"memory": arguments.memory}

    def run(self, context: ToolContext, arguments: ForgetArguments) -> ToolResult:
        memories = memories_of(user=_user(context))
        wanted = " ".join(arguments.memory.split())
        matches = list(memories.filter(text__iexact=wanted)) or list(memories.filter(text__icontains=wanted)[:6])
        if not matches:
            raise ToolError(f"No memory matches {wanted!r}. Nothing was deleted.")
        if len(matches) > 1:
            listed = "; ".join(m.text for m in matches[:5])
            raise ToolError(f"Several memories match: {listed}. Give the exact text of the one to delete.")
        memory_delete(memory=matches[0])
        return ToolResult(content=f"Deleted: {matches[0].text}",
                          summary=_("Forgot “%(memory)s”") % {"memory": matches[0].text})
