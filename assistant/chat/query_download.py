"""The CSV download of a query result under an answer: the stored SQL run again, governed as the
reader who asks (never the rows stored for the answer), up to SQL_TOOL_DOWNLOAD_ROWS rows,
audited ("sql.download") and rate-limited with the query tool's limit."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from assistant.accounts.ratelimit import sql_query_allowed, too_many_requests, wait_phrase
from assistant.chat.models import Message
from assistant.chat.selectors import queries_shown, stored_queries
from assistant.chat.sharing import message_get_readable
from connectors.selectors import acl_groups_of
from connectors.sql_questions import SqlQuestionError, database_answer

#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A value as a CSV cell: text a spreadsheet would run as a formula gets a leading quote;
    numbers (a negative one included) stay numbers."""
    if value is None:
        return ""
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (int, float, bool)):
        return str(value)
    text = value.isoformat() if isinstance(value, (dt.date, dt.datetime, dt.time)) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(columns: list[str], rows: list[tuple]) -> Iterator[str]:
    """The CSV, header first, a line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in [[csv_cell(c) for c in columns], *([csv_cell(v) for v in row] for row in rows)]:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)


def _stored_query(message: Message, query_id: str) -> dict | None:
    return next((q for q in stored_queries(message) if str(q.get("query_id")) == query_id), None)


def _filename(entry: dict) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return f"{slugify(entry.get('title') or '')[:60] or 'query'}-{stamp}.csv"


@login_required
@require_GET
def query_csv(request: HttpRequest, message_id, query_id):
    """The full result of a query under one of the reader's answers (or of a conversation shared
    with them), as CSV: 404 for an answer or query they cannot read, 403 when they may not (or no
    longer) query its connector or datasets. Always run as the reader, never as the answer's owner."""
    try:
        message = message_get_readable(user=request.user, message_id=message_id)
    except Message.DoesNotExist:
        raise Http404(_("No such answer.")) from None
    entry = _stored_query(message, str(query_id))
    if entry is None or not entry.get("sql"):
        raise Http404(_("No such query result."))
    if str(query_id) not in queries_shown(user=request.user, messages=[message]):
        raise PermissionDenied(_("You may no longer query this data."))
    verdict = sql_query_allowed(user_id=request.user.pk)
    if not verdict.allowed:
        wait = wait_phrase(verdict.retry_after)
        return too_many_requests(request, _("Too many database queries: try again in %(wait)s.") % {"wait": wait},
                                 verdict.retry_after)
    try:
        answer = database_answer(
            user=request.user, groups=acl_groups_of(request.user), connector_id=entry.get("connector_id"),
            sql=str(entry["sql"]), row_limit=settings.SQL_TOOL_DOWNLOAD_ROWS, action="sql.download",
        )
    except SqlQuestionError as exc:
        return HttpResponse(_("The database could not answer: %(reason)s") % {"reason": exc}, status=502,
                            content_type="text/plain; charset=utf-8")
    result = answer.result
    response = StreamingHttpResponse(csv_lines(result.columns, result.rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(entry)}"'
    response["Cache-Control"] = "no-store"
    response["X-Rows"] = str(len(result.rows))
    response["X-Rows-Truncated"] = "true" if result.truncated else "false"
    return response
