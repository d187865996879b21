"""Template pieces for the chat page: the assistant picker, the user's ratings, the memory menu."""

from __future__ import annotations

from django import template

from assistant.chat.assistants import assistant_for_conversation, assistants_available
from assistant.chat.feedback import feedback_of
from assistant.chat.library_pins import conversation_libraries_shown
from assistant.chat.memory import memory_enabled
from connectors.library_selectors import libraries_visible

register = template.Library()


@register.inclusion_tag("chat/_assistant_picker.html", takes_context=True)
def assistant_picker(context, conversation=None):
    current = assistant_for_conversation(conversation)
    assistants = list(assistants_available(user=context["request"].user))
    return {"assistants": assistants, "current": current, "conversation": conversation}


@register.inclusion_tag("chat/_library_pins.html", takes_context=True)
def library_pins(context, conversation=None):
    """The libraries this conversation searches only (if any), and the form to pick them."""
    request = context["request"]
    pinned = conversation_libraries_shown(conversation=conversation, user=request.user)
    return {
        "conversation": conversation,
        "pinned": pinned,
        "pinned_ids": {lib.id for lib in pinned},
        "libraries": list(libraries_visible(user=request.user)),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }


@register.simple_tag(takes_context=True)
def feedback_state(context, chat_messages) -> dict:
    """The user's own ratings of the answers shown: {message id: {rating, comment}}."""
    user = context["request"].user
    ids = [m.id for m in chat_messages or [] if getattr(m, "role", "") == "assistant"]
    if not ids:
        return {}
    ratings = feedback_of(user=user, message_ids=ids)
    return {key: {"rating": f.rating, "comment": f.comment} for key, f in ratings.items()}


@register.inclusion_tag("chat/_user_menu.html", takes_context=True)
def user_menu(context):
    request = context["request"]
    return {"user": request.user, "memory_enabled": memory_enabled(user=request.user), "request": request}
