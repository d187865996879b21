"""Feedback on answers: a user's thumbs up or down with an optional comment, and the
staff's list and CSV export of it (to turn into evaluation cases).

Exports are for staff only and each one is recorded by `feedback_export_record`, in
FeedbackExport and in the audit log (connectors.audit).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from assistant.chat.models import Feedback, FeedbackExport, Message
from assistant.chat.services import InvalidInput
from connectors.audit import audit_record

logger = logging.getLogger("assistant.audit")

MAX_COMMENT_CHARS = 2000
FEEDBACK_EXPORTED = "feedback.exported"  # the audit log's action
CSV_COLUMNS = [
    "date", "user", "rating", "comment", "question", "answer", "sources", "steps", "assistant", "conversation_id",
    "message_id",
]
_RATABLE = (Message.Status.COMPLETE, Message.Status.STOPPED)


# ----------------------------------------------------------------- services


@transaction.atomic
def feedback_set(*, message: Message, user, rating: str, comment: str = "") -> Feedback:
    """Rate an answer (again: the new rating and comment replace the old ones)."""
    if message.role != Message.Role.ASSISTANT:
        raise InvalidInput(_("Only answers can be rated."))
    if message.status not in _RATABLE:
        raise InvalidInput(_("Wait for the answer to finish before rating it."))
    if rating not in Feedback.Rating.values:
        raise InvalidInput(_('The rating must be "up" or "down".'))
    if not isinstance(comment, str):
        raise InvalidInput(_("The comment must be text."))
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(
            _("The comment is limited to %(limit)s characters; it has %(length)s.")
            % {"limit": MAX_COMMENT_CHARS, "length": len(comment)}
        )
    feedback, _created = Feedback.objects.update_or_create(
        message=message, user=user, defaults={"rating": rating, "comment": comment}
    )
    return feedback


def feedback_clear(*, message: Message, user) -> bool:
    """Withdraw the user's rating of an answer."""
    deleted, _counts = Feedback.objects.filter(message=message, user=user).delete()
    return bool(deleted)


def feedback_export_record(*, user, filters: dict, row_count: int) -> FeedbackExport:
    """Record that `user` exported feedback (here and in the audit log); call it on every export."""
    logger.info("feedback export by %s: %d rows, filters %s", user.get_username(), row_count, filters)
    audit_record(
        actor=user, action=FEEDBACK_EXPORTED, target=("chat.feedback", "", "Answer feedback (CSV)"),
        details={"filters": filters, "rows": row_count},
    )
    return FeedbackExport.objects.create(user=user, username=user.get_username(), filters=filters, row_count=row_count)


# ---------------------------------------------------------------- selectors


@dataclass(frozen=True)
class FeedbackFilters:
    rating: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def parse(cls, params) -> FeedbackFilters:
        """From query parameters `rating` (up/down), `from` and `to` (YYYY-MM-DD, inclusive)."""
        rating = (params.get("rating") or "").strip()
        if rating and rating not in Feedback.Rating.values:
            raise InvalidInput(_('Filter the rating by "up" or "down", or leave it empty.'))

        def day(name: str) -> dt.date | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            try:
                return dt.date.fromisoformat(raw)
            except ValueError:
                raise InvalidInput(f'The "{name}" date must look like 2025-01-31, got "{raw}".') from None

        filters = cls(rating=rating, date_from=day("from"), date_to=day("to"))
        if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
            raise InvalidInput('The "from" date must not be after the "to" date.')
        return filters

    def as_dict(self) -> dict:
        return {
            "rating": self.rating,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }


def feedback_list(*, filters: FeedbackFilters | None = None) -> QuerySet[Feedback]:
    """All feedback for staff, newest first, with the question each answer replied to.

    Conversations deleted by their owner (even while "Undo" is possible) are left out.
    """
    filters = filters or FeedbackFilters()
    question = Message.objects.filter(
        conversation_id=OuterRef("message__conversation_id"),
        role=Message.Role.USER,
        created_at__lte=OuterRef("message__created_at"),
    ).order_by("-created_at")
    queryset = (
        Feedback.objects.select_related("user", "message", "message__conversation", "message__conversation__assistant")
        # the answer's parent is its question; older messages without one: the latest question before it
        .annotate(question=Coalesce(F("message__parent__content"), Subquery(question.values("content")[:1])))
        .order_by("-updated_at")
    )
    queryset = queryset.filter(message__conversation__deleted_at__isnull=True)
    if filters.rating:
        queryset = queryset.filter(rating=filters.rating)
    tz = timezone.get_current_timezone()
    if filters.date_from:
        queryset = queryset.filter(updated_at__gte=dt.datetime.combine(filters.date_from, dt.time.min, tzinfo=tz))
    if filters.date_to:
        queryset = queryset.filter(
            updated_at__lt=dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        )
    return queryset


def feedback_of(*, user, message_ids) -> dict[str, Feedback]:
    """The user's own ratings of these answers, by message id (for showing their state)."""
    return {str(f.message_id): f for f in Feedback.objects.filter(user=user, message_id__in=message_ids)}


def sources_text(citations: list) -> str:
    """Cited sources as "title (location)" separated by "; "."""
    parts = []
    for citation in citations or []:
        if not isinstance(citation, dict):
            continue
        title = str(citation.get("title") or "").strip()
        location = str(citation.get("location") or "").strip()
        n = citation.get("n")
        label = f"[{n}] {title}" if n is not None else title
        parts.append(f"{label} ({location})" if location else label)
    return "; ".join(parts)


def steps_text(steps: list) -> str:
    """The agent's tool calls, one per line: "1. tool {arguments} → summary (12 ms)", or the error."""
    lines = []
    for step in steps or []:
        if not isinstance(step, dict):
            continue
        arguments = json.dumps(step.get("arguments") or {}, ensure_ascii=False, sort_keys=True)
        outcome = f"error: {step.get('error')}" if step.get("status") == "error" else (
            step.get("summary") or step.get("status") or "")
        took = f" ({step['duration_ms']} ms)" if isinstance(step.get("duration_ms"), int) else ""
        lines.append(f"{step.get('step', '?')}. {step.get('tool', '?')} {arguments} → {outcome}{took}")
    return "\n".join(lines)


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def feedback_csv_rows(queryset: QuerySet[Feedback]) -> Iterator[str]:
    """The CSV, header first, one line at a time (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return value

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for feedback in queryset.iterator(chunk_size=500):
        message = feedback.message
        conversation = message.conversation
        writer.writerow(
            [
                _cell(timezone.localtime(feedback.updated_at).isoformat(timespec="seconds")),
                _cell(feedback.user.get_username()),
                _cell(feedback.rating),
                _cell(feedback.comment),
                _cell(feedback.question),
                _cell(message.content),
                _cell(sources_text(message.citations)),
                _cell(steps_text(message.steps)),
                _cell(conversation.assistant.name if conversation.assistant else ""),
                _cell(conversation.id),
                _cell(message.id),
            ]
        )
        yield flush()
