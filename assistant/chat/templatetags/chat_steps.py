"""Template filters for an answer's steps (tool calls): the label with its quoted part emphasised,
and the arguments as rows. static/js/chat-steps.js draws the same for steps that arrive live."""

from __future__ import annotations

import json
import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()

#: What a label quotes (“travel policy 2024”, « politique voyages »): shown in italics, unquoted.
QUOTED = re.compile(r"“([^”]*)”|«\s?([^»]*?)\s?»")


@register.filter
def step_label(label) -> str:
    text, out, at = str(label or ""), [], 0
    for match in QUOTED.finditer(text):
        out.append(conditional_escape(text[at:match.start()]))
        out.append(format_html("<em>{}</em>", match.group(1) if match.group(1) is not None else match.group(2)))
        at = match.end()
    out.append(conditional_escape(text[at:]))
    return mark_safe("".join(out))  # every piece above is escaped


@register.filter
def step_arguments(arguments) -> list[tuple[str, str]]:
    """(name, value) rows; a value that is not text is shown as JSON."""
    if not isinstance(arguments, dict):
        return []
    return [
        (str(name), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        for name, value in arguments.items()
    ]


@register.filter
def query_json(source) -> str:
    """A query source (selectors.steps_and_sources_shown) as JSON for its data-query attribute,
    which static/js/chat-query.js draws; escaped as any attribute value is."""
    return json.dumps(source, ensure_ascii=False, separators=(",", ":"), default=str)
