"""The index's page under /connectors/ (staff only): the live version, a rebuild's progress, the button."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from connectors.index_version import index_status
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
