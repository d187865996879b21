"""`{% chat_strings "ux-strings" %}`: one <template> of words the chat page's scripts show."""

from __future__ import annotations

from django import template

from assistant.chat.ui_strings import TEMPLATES
from connectors.ui_strings import strings_template

register = template.Library()


@register.simple_tag
def chat_strings(element_id: str) -> str:
    return strings_template(element_id, TEMPLATES[element_id])
