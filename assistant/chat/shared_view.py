"""What a viewer of a shared conversation is shown: its owner's shown branch, read-only, each
answer's citations, sources and steps re-checked against the VIEWER's access at that moment.

The answers' text is what the owner shared. Everything an answer points at goes through the
same checks as the owner's own chat page, run as the viewer (selectors.citations_shown and
steps_and_sources_shown): a document by its ACL, a query result while the viewer may still
query its connector and every dataset it read, an attached file never (it stays its owner's).
A citation that fails becomes a "Source not available to you" marker with nothing of the source
in it: no title, text, location, URL or passage. Steps keep their label (unless a source of
theirs was withheld) and the sources the viewer may open, never their arguments, summaries or
errors, which can name tables and documents of the owner's.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from assistant.agent.steps import default_label
from assistant.chat.models import Conversation, Message
from assistant.chat.selectors import answer_html_shown, messages_with_citations_shown, thread_of

IN_PROGRESS = (Message.Status.PENDING, Message.Status.STREAMING)


def unavailable_label() -> str:
    return _("Source not available to you")


def _sources_for_viewer(message: Message) -> list[dict]:
    """The sources the viewer may open, plus a bare marker for each cited one they may not;
    cited first, by number."""
    shown = list(message.shown_sources)
    if not shown:
        return []  # an answer stored before sources were kept: its citations list says it all
    present = {s.get("n") for s in shown}
    withheld = [{"n": c.get("n"), "cited": True, "unavailable": True}
                for c in message.shown_citations if not c.get("available") and c.get("n") not in present]
    return sorted(shown + withheld, key=lambda s: (not s.get("cited"), s.get("n") or 0))


def _steps_for_viewer(message: Message) -> list[dict]:
    stored = {s.get("id"): s for s in message.steps or [] if isinstance(s, dict)}
    steps = []
    for step in message.shown_steps:
        original = stored.get(step.get("id")) or {}
        lost = len([s for s in original.get("sources") or [] if isinstance(s, dict)]) != len(step.get("sources") or [])
        label = default_label(str(step.get("tool") or "")) if lost else step.get("label")
        steps.append({"id": step.get("id"), "tool": step.get("tool"), "status": step.get("status"), "label": label,
                      "sources": step.get("sources") or []})
    return steps


def shared_thread(*, viewer, conversation: Conversation) -> list[Message]:
    """The conversation's shown branch as `viewer` may see it now, oldest first. Each message gets
    `shown_html`, `shown_citations`, `shown_sources`, `shown_steps` and `in_progress`."""
    messages = messages_with_citations_shown(user=viewer, messages=thread_of(conversation=conversation))
    label = unavailable_label()
    for m in messages:
        m.shown_html = answer_html_shown(m.rendered_html, m.shown_citations, label)
        m.shown_sources = _sources_for_viewer(m)
        m.shown_steps = _steps_for_viewer(m)
        m.in_progress = m.role == Message.Role.ASSISTANT and m.status in IN_PROGRESS
    return messages
