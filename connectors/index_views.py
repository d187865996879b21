"""The index's page under /connectors/ (staff only): the live version, a rebuild's progress, the button,
and that progress as JSON for the notice on every connectors page (followed by connectors.js)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from connectors.index_version import FIRST_VERSION, index_status
from connectors.models import Chunk, IndexVersion
from connectors.rebuild import index_rebuild_start
from connectors.staff import staff_required

VERSIONS_SHOWN = 10


@staff_required
@require_GET
def index_page(request: HttpRequest):
    status = index_status()
    live_chunks = Chunk.objects.filter(index_version=status.live.number).count() if status.live else None
    context = {
        "status": status,
        "live_chunks": live_chunks,
        "versions": list(IndexVersion.objects.select_related("started_by")[:VERSIONS_SHOWN]),
    }
    return render(request, "connectors/index.html", context)


@staff_required
@require_POST
def index_rebuild(request: HttpRequest):
    version, created = index_rebuild_start(actor=request.user)
    if created:
        messages.success(
            request,
            _("Rebuild started as version %(number)s: searches keep using the live index until it is complete.")
            % {"number": version.number},
        )
    else:
        messages.info(
            request,
            _("A rebuild is already running (version %(number)s); it was resumed, not started twice.")
            % {"number": version.number},
        )
    return redirect("connectors:index")


@staff_required
@require_GET
def index_progress(request: HttpRequest):
    """The rebuild's progress in the shape connectors.js follows for a sync ("active", "run"): the
    notice above the connectors list advances without a reload and reloads the page at the switch."""
    status = index_status()
    building = status.building
    run = None
    if building is not None:
        run = {
            "status": "running", "status_label": _("Running"), "version": building.number,
            "progress_percent": building.progress_percent, "documents_done": building.documents_done,
            "documents_total": building.documents_total, "chunks_done": building.chunks_done,
        }
    return JsonResponse({
        "active": building is not None,
        "status": "building" if building is not None else "live",
        "live_version": status.live.number if status.live else FIRST_VERSION,
        "out_of_date": status.out_of_date,
        "run": run,
    })
