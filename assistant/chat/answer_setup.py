"""What an answer is made of besides retrieval: the conversation's assistant (instructions,
connectors, model parameters, tools), the user's memories, notices about sources still
syncing, and the "remember that ..." command answered without the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from assistant.chat.assistants import (
    ModelParameters,
    assistant_for_conversation,
    assistant_model_parameters,
    assistant_tool_names,
    connectors_still_syncing,
)
from assistant.chat.library_pins import conversation_search_filters
from assistant.chat.memory import (
    memory_add,
    memory_command_parse,
    memory_enabled,
    memory_prompt_section,
)
from assistant.chat.models import Memory, Message
from assistant.chat.services import InvalidInput
from assistant.rag.prompts import system_prompt_for
from connectors.selectors import acl_groups_of
from connectors.search import SearchFilters
from connectors.stage_timing import lap


@dataclass
class AnswerSetup:
    assistant_name: str
    system_prompt: str
    filters: SearchFilters
    params: ModelParameters
    notices: list[str] = field(default_factory=list)
    reply: str | None = None  # set when the message is answered without the model
    remembered: str | None = None  # the fact saved by a "remember that ..." command
    #: The tools the model may call (names): not empty only where the model server supports tools
    #: (LLM_TOOLS); then the answer goes through the agent loop.
    tools: list[str] = field(default_factory=list)
    user_id: int | None = None
    groups: list[str] = field(default_factory=list)  # the user's, for the ACL of retrieval

    def stream_params(self, *, max_tokens: int) -> dict:
        """The model's parameters; `tools` are the agent loop's to add."""
        return {"max_tokens": max_tokens, "temperature": self.params.temperature, "model": self.params.model}


def _syncing_notice(names: list[str]) -> str:
    quoted = ", ".join(f"“{name}”" for name in names)
    if len(names) == 1:
        text = _("The connector %(names)s is still being indexed for the first time; this answer cannot use it yet.")
    else:
        text = _("The connectors %(names)s are still being indexed for the first time; "
                 "this answer cannot use them yet.")
    return text % {"names": quoted}


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


def answer_setup(*, message: Message, user, question: str, language: str = "", notices: bool = True) -> AnswerSetup:
    """Everything the answer to `question` needs from the assistant, the user's memory and the sources
    (`notices`: whether to look for connectors still syncing, which only a reader of notices needs)."""
    assistant = assistant_for_conversation(message.conversation)
    setup = AnswerSetup(
        assistant_name=assistant.name,
        system_prompt="",
        filters=conversation_search_filters(conversation=message.conversation, assistant=assistant),
        params=assistant_model_parameters(assistant=assistant),
        user_id=user.pk,
        groups=acl_groups_of(user),
    )
    lap("setup_assistant")  # the conversation's assistant, its connectors; the user's groups
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
    if settings.LLM_TOOLS:
        setup.tools = assistant_tool_names(assistant=assistant, memory=remembers)
    lap("setup_memory")  # the user's memories, the system prompt
    syncing = notices and connectors_still_syncing(
        assistant=assistant, user=user, groups=setup.groups, filters=setup.filters
    )
    if syncing:
        setup.notices.append(_syncing_notice(syncing))
    lap("setup_syncing_notice")
    return setup
