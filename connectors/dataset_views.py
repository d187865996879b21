"""The dataset editor's JSON endpoints (staff only, POST with the CSRF token): the tables and views
of the database the form points at, and a preview of two rows of one dataset. The body is a JSON
object of the form's connection settings (an empty password: the saved connector's) plus `query`
or `dataset`; a problem to fix is a 400 {"ok": false, "error", "field", "dataset_field"}."""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from connectors.dataset_editor import EditorInputError, database_preview, database_tables, editor_kinds
from connectors.models import Connector
from connectors.request_input import RequestInvalid, json_object
from connectors.staff import staff_required

logger = logging.getLogger(__name__)


def _answer(request: HttpRequest, kind: str, connector: Connector | None, action) -> JsonResponse:
    if kind not in editor_kinds():
        raise Http404(_("No such source kind."))
    try:
        body = json_object(request)
        return JsonResponse(action(kind=kind, body=body, connector=connector))
    except RequestInvalid as exc:
        return JsonResponse({"ok": False, "error": str(exc), "field": None, "dataset_field": None}, status=exc.status)
    except EditorInputError as exc:
        return JsonResponse(exc.as_json(), status=400)
    except Exception as exc:  # a source bug must not become a 500 in the middle of the form
        logger.warning("the dataset editor's %s failed", action.__name__, exc_info=True)
        message = f"The database could not be read ({exc.__class__.__name__}); see the server log."
        return JsonResponse({"ok": False, "error": message, "field": None, "dataset_field": None}, status=502)


@staff_required
@require_POST
def new_tables(request: HttpRequest, kind: str):
    return _answer(request, kind, None, database_tables)


@staff_required
@require_POST
def new_preview(request: HttpRequest, kind: str):
    return _answer(request, kind, None, database_preview)


@staff_required
@require_POST
def saved_tables(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    return _answer(request, connector.kind, connector, database_tables)


@staff_required
@require_POST
def saved_preview(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    return _answer(request, connector.kind, connector, database_preview)
