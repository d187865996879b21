"""Uploads into an upload connector from its page: files in (checked by content), a file out."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_POST

from connectors import uploads
from connectors.models import Connector
from connectors.request_input import answers_bad_input, text
from connectors.staff import staff_required
from connectors.upload_storage import UPLOAD_KIND


@staff_required
@require_POST
def files_upload(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    if connector.kind != UPLOAD_KIND:
        raise Http404(_("This connector takes no uploads."))
    files = request.FILES.getlist("files")
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not files:
        if wants_json:
            return JsonResponse({"accepted": [], "refused": {}, "error": "Choose at least one file."}, status=400)
        messages.error(request, _("Choose at least one file to upload."), extra_tags="upload")
        return redirect(reverse("connectors:detail", args=[connector.id]) + "#upload")
    result = uploads.files_upload(connector=connector, files=files, actor=request.user)
    if wants_json:
        return JsonResponse({"accepted": result.accepted, "refused": result.refused, "queued": result.run is not None})
    if result.accepted:
        count = len(result.accepted)
        messages.success(
            request,
            ngettext(
                "Uploaded %(count)d file: %(names)s. A sync is queued.",
                "Uploaded %(count)d files: %(names)s. A sync is queued.",
                count,
            )
            % {"count": count, "names": ", ".join(result.accepted)},
            extra_tags="upload",
        )
    for name, reason in result.refused.items():
        messages.error(request, _("Refused %(name)s: %(reason)s") % {"name": name, "reason": reason}, extra_tags="upload refusal")
    return redirect(reverse("connectors:detail", args=[connector.id]) + "#upload")


@staff_required
@require_POST
@answers_bad_input
def file_delete(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    name = text(request.POST, "name", max_chars=1000)
    try:
        uploads.file_delete(connector=connector, name=name, actor=request.user)
    except uploads.UploadError as exc:
        messages.error(request, str(exc), extra_tags="upload")
    else:
        messages.success(request, _("Deleted %(name)s; a sync removes it from the index.") % {"name": name}, extra_tags="upload")
    return redirect(reverse("connectors:detail", args=[connector.id]) + "#upload")
