"""The "Connectors" pages: staff manage connectors, watch syncs and inspect the index.

Every page is for staff only. A signed-out visitor is sent to the sign-in page; a
signed-in user who is not staff gets a 404, never a 403 that would confirm the area exists.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from connectors import uploads
from connectors.upload_storage import UPLOAD_KIND, upload_dir_ensure, upload_dir_for
from connectors.diagnostics import explain_missing
from connectors.dataset_editor import connection_fields, editor_kinds
from connectors.forms import ConnectorForm
from connectors.previews import preview_item, scrub
from connectors.access import document_access_explain
from connectors.index_version import index_status, live_index
from connectors.models import AuditEvent, Chunk, Connector, Document, SyncRun
from connectors.request_input import answers_bad_input, query_text
from connectors.services import (
    ConnectorInvalid,
    connector_delete,
    connector_pause,
    connector_reindex,
    connector_save,
    connector_source,
    connector_sync_start,
    sync_run_cancel,
)
from connectors.sources.base import SourceError
from connectors.sources.registry import SOURCES, kind_choices
from connectors.staff import staff_required

logger = logging.getLogger(__name__)

RUNS_SHOWN = 20
DOCUMENTS_PER_PAGE = 50
FAILURES_SHOWN = 500
PREVIEW_ITEMS = 5
USERS_LISTED = 1000  # suggestions in the "why can this user see it?" picker
GROUPS_LISTED = 1000  # groups offered to a dataset's ACL in the dataset editor
AUDIT_PER_PAGE = 50


# --- small reads -------------------------------------------------------------------------


def _active_runs() -> Prefetch:
    return Prefetch("runs", queryset=SyncRun.objects.filter(status__in=SyncRun.ACTIVE), to_attr="active_runs")


def _connector(connector_id) -> Connector:
    queryset = Connector.objects.admin_managed().prefetch_related(_active_runs()).annotate(
        document_count=Count("documents", distinct=True)
    )
    return get_object_or_404(queryset, id=connector_id)


def _active_run(connector: Connector) -> SyncRun | None:
    runs = getattr(connector, "active_runs", None)
    if runs is None:
        return SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE).first()
    return runs[0] if runs else None


def display_status(connector: Connector, active: SyncRun | None) -> str:
    """idle, syncing, error or paused: what an admin needs to know first."""
    if active is not None:
        return "syncing"
    if connector.is_paused:
        return "paused"
    if connector.status == Connector.Status.ERROR:
        return "error"
    if connector.status == Connector.Status.SYNCING:
        return "syncing"
    return "idle"


def freshness(connector: Connector, now: dt.datetime | None = None) -> tuple[str, str]:
    """(code, label): fresh when the last success is within twice the sync interval."""
    now = now or timezone.now()
    if connector.last_success_at is None:
        return "never", "Never synced"
    if connector.sync_interval:
        if now - connector.last_success_at <= 2 * connector.sync_interval:
            return "fresh", "Fresh"
        return "stale", "Stale"
    return "manual", "On demand"


def duration_label(value: dt.timedelta | None) -> str:
    if value is None:
        return ""
    seconds = value.total_seconds()
    if seconds < 1:
        return "under 1 s"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def interval_label(value: dt.timedelta | None) -> str:
    if not value:
        return "On demand"
    minutes = int(value.total_seconds() // 60)
    for size, unit in ((1440, "day"), (60, "hour")):
        if minutes >= size and minutes % size == 0:
            count = minutes // size
            return f"Every {count} {unit}{'' if count == 1 else 's'}" if count != 1 else f"Every {unit}"
    return f"Every {minutes} minute{'' if minutes == 1 else 's'}"


def _kind_label(kind: str) -> str:
    source = SOURCES.get(kind)
    return source.label if source else kind


def _source_class(kind: str):
    source = SOURCES.get(kind)
    if source is None or getattr(source, "user_owned", False):  # a library is made by its owner
        raise Http404(_("No such source kind."))
    return source


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _run_payload(run: SyncRun | None) -> dict | None:
    if run is None:
        return None
    duration = run.duration
    return {
        "id": str(run.id),
        "status": run.status,
        "status_label": run.get_status_display(),
        "trigger": run.trigger,
        "active": run.status in SyncRun.ACTIVE,
        "seen": run.seen,
        "added": run.added,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "deleted": run.deleted,
        "failed": run.failed,
        "indexed": run.indexed,
        "to_index": run.to_index,
        "total": run.total,
        "fetch_done": run.fetch_done,
        "progress_percent": run.progress_percent,
        "error": run.error,
        "notes": run.notes,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": round(duration.total_seconds(), 1) if duration else None,
        "url": reverse("connectors:run", args=[run.id]),
    }


def _secret_values(connector: Connector) -> list[str]:
    if not connector.encrypted_secrets:
        return []
    try:
        from connectors.secrets import decrypt_secrets

        return [str(v) for v in decrypt_secrets(connector.encrypted_secrets).values() if v not in (None, "")]
    except Exception:  # unreadable secrets: nothing to scrub, the check reports the problem
        return []


# --- pages -----------------------------------------------------------------------------------


@staff_required
def sources_moved(request: HttpRequest, rest: str):
    """The pages' old address, /sources/...: a 301 to the same page and query under /connectors/.

    The pages were "Data sources" until the UI took the model's word, "connector"; bookmarks keep working.
    """
    return HttpResponsePermanentRedirect(reverse("connectors:list") + request.get_full_path_info()[len("/sources/"):])


@staff_required
@require_GET
def connector_list(request: HttpRequest):
    connectors = list(
        Connector.objects.admin_managed().prefetch_related(_active_runs())
        .annotate(document_count=Count("documents", distinct=True))
        .order_by("name")
    )
    now = timezone.now()
    rows = []
    for connector in connectors:
        active = _active_run(connector)
        rows.append(
            {
                "connector": connector,
                "kind_label": _kind_label(connector.kind),
                "status": display_status(connector, active),
                "freshness": freshness(connector, now),
                "active_run": active,
            }
        )
    kinds = sorted(kind_choices(), key=lambda item: item[1])
    return render(request, "connectors/list.html", {"rows": rows, "kinds": kinds, "index": index_status()})


def _form_page(request: HttpRequest, *, kind: str, connector: Connector | None):
    source_class = _source_class(kind)
    editing = connector is not None
    if request.method == "POST":
        form = ConnectorForm(request.POST, source_class=source_class, connector=connector)
        if form.is_valid():
            target = connector if editing else Connector(kind=kind)  # a new upload needs its id now
            fixed = {"path": str(upload_dir_for(target))} if kind == UPLOAD_KIND else None
            try:
                saved = connector_save(
                    connector=target if (editing or fixed) else None, kind=kind, actor=request.user,
                    **form.service_kwargs(fixed_settings=fixed),
                )
            except ConnectorInvalid as exc:
                form.add_service_errors(exc.errors)
            else:
                if kind == uploads.UPLOAD_KIND:
                    upload_dir_ensure(saved)
                if editing:
                    messages.success(request, _("Saved “%(name)s”.") % {"name": saved.name})
                    return redirect("connectors:detail", saved.id)
                if kind == uploads.UPLOAD_KIND:
                    messages.success(request, _("Created “%(name)s”. Now upload its files.") % {"name": saved.name})
                    return redirect(reverse("connectors:detail", args=[saved.id]) + "#upload")
                messages.success(request, _("Created “%(name)s”. Run a sync to index it.") % {"name": saved.name})
                return redirect("connectors:detail", saved.id)
    else:
        form = ConnectorForm(source_class=source_class, connector=connector)
    setting_names = set(form.setting_fields)
    context = {
        "form": form,
        "connector": connector,
        "kind": kind,
        "kind_label": source_class.label,
        "general_fields": [form[name] for name in ("name",)],
        "setting_fields": [form[name] for name in form.fields if name in setting_names],
        "access_fields": [form[name] for name in ("is_public", "groups")],
        "schedule_fields": [form[name] for name in ("sync_interval", "is_paused")],
        "is_upload": kind == uploads.UPLOAD_KIND,
        "dataset_editor": _dataset_editor(form, kind, connector),
    }
    if context["dataset_editor"]:  # the editor reads the connection settings above it
        context["setting_fields"].sort(key=lambda field: field.name == "datasets")
    return render(request, "connectors/form.html", context, status=400 if form.errors else 200)


def _dataset_editor(form: ConnectorForm, kind: str, connector: Connector | None) -> dict | None:
    """What the dataset editor of a database form needs (its script reads it); None for other kinds."""
    if kind not in editor_kinds():
        return None
    saved = connector is not None
    return {
        "tables_url": reverse("connectors:tables", args=[connector.id]) if saved else reverse(
            "connectors:new_tables", args=[kind]),
        "preview_url": reverse("connectors:preview", args=[connector.id]) if saved else reverse(
            "connectors:new_preview", args=[kind]),
        "saved": saved,
        "dialect": SOURCES[kind].sql_dialect,
        "connection_fields": connection_fields(kind),
        "groups": list(Group.objects.order_by("name").values_list("name", flat=True)[:GROUPS_LISTED]),
        "errors": form.dataset_errors,
    }


@staff_required
@require_http_methods(["GET", "POST"])
def connector_create(request: HttpRequest, kind: str):
    return _form_page(request, kind=kind, connector=None)


@staff_required
@require_http_methods(["GET", "POST"])
def connector_edit(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    return _form_page(request, kind=connector.kind, connector=connector)


@staff_required
@require_GET
def connector_detail(request: HttpRequest, connector_id):
    connector = _connector(connector_id)
    active = _active_run(connector)
    runs = list(connector.runs.annotate(failure_count=Count("failures")).order_by("-created_at")[:RUNS_SHOWN])
    for run in runs:
        run.duration_label = duration_label(run.duration)
    latest = active or (runs[0] if runs else None)
    is_upload = connector.kind == uploads.UPLOAD_KIND
    context = {
        "connector": connector,
        "kind_label": _kind_label(connector.kind),
        "status": display_status(connector, active),
        "freshness": freshness(connector),
        "interval_label": interval_label(connector.sync_interval),
        "active_run": active,
        "latest_run": latest,
        "runs": runs,
        "is_upload": is_upload,
        "files": uploads.files_list(connector) if is_upload else [],
        "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
        "upload_max_label": uploads.human_size(settings.UPLOAD_MAX_BYTES),
        "upload_extensions": uploads.accepted_extensions(),
        "groups": connector.acl_group_names(),
        "pending_count": connector.documents.exclude(index_status=Document.IndexStatus.INDEXED).count(),
    }
    return render(request, "connectors/detail.html", context)


@staff_required
@require_GET
def connector_progress(request: HttpRequest, connector_id):
    connector = _connector(connector_id)
    active = _active_run(connector)
    latest = active or connector.runs.order_by("-created_at").first()
    status = display_status(connector, active)
    return JsonResponse(
        {
            "status": status,
            "active": active is not None,
            "connector": {
                "id": str(connector.id),
                "name": connector.name,
                "status": status,
                "is_paused": connector.is_paused,
                "last_success_at": _iso(connector.last_success_at),
                "last_error": connector.last_error,
                "document_count": connector.document_count,
                "freshness": freshness(connector)[0],
            },
            "run": _run_payload(latest),
        }
    )


@staff_required
@require_POST
def connector_test(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    secrets = _secret_values(connector)
    preview: list[dict] = []
    try:
        source = connector_source(connector)
        message = source.check()
        if hasattr(source, "preview"):
            preview = [preview_item(item) for item in source.preview(PREVIEW_ITEMS)]
        ok = True
    except SourceError as exc:
        ok, message = False, str(exc)
    except Exception as exc:  # a source bug must not become a 500 page in the middle of the form
        logger.warning("testing connector %s failed", connector.id, exc_info=True)
        ok, message = False, f"The test failed unexpectedly ({exc.__class__.__name__}); see the server log."
    for item in preview:
        for key in ("title", "text", "location"):
            item[key] = scrub(item[key], secrets)
    return JsonResponse({"ok": ok, "message": scrub(str(message), secrets), "preview": preview})


@staff_required
@require_GET
def run_detail(request: HttpRequest, run_id):
    run = get_object_or_404(SyncRun.objects.select_related("connector").filter(connector__owner__isnull=True), id=run_id)
    failures = run.failures.order_by("external_id")
    context = {
        "run": run,
        "connector": run.connector,
        "failures": failures[:FAILURES_SHOWN],
        "failure_count": failures.count(),
        "failures_shown": FAILURES_SHOWN,
        "duration_label": duration_label(run.duration),
    }
    return render(request, "connectors/run.html", context)


@staff_required
@require_GET
@answers_bad_input
def document_list(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    query = query_text(request, "q")
    status = query_text(request, "status")
    documents = connector.documents.annotate(chunk_count=Count("chunks")).only(
        "id", "title", "external_id", "index_status", "index_error", "acl_public", "acl_groups", "indexed_at",
        "acl_from_source", "connector_id",
    )
    if query:
        documents = documents.filter(Q(title__icontains=query) | Q(external_id__icontains=query))
    if status in Document.IndexStatus.values:
        documents = documents.filter(index_status=status)
    page = Paginator(documents.order_by("title", "external_id"), DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "connector": connector,
        "page": page,
        "query": query,
        "status": status,
        "statuses": Document.IndexStatus.choices,
        "total": connector.documents.count(),
    }
    return render(request, "connectors/documents.html", context)


@staff_required
@require_GET
@answers_bad_input
def document_detail(request: HttpRequest, document_id):
    document = get_object_or_404(
        Document.objects.select_related("connector", "pending_run").filter(connector__owner__isnull=True), id=document_id
    )
    chunks = Chunk.objects.filter(document=document, index_version=live_index().number).order_by("ordinal").only(
        "id", "ordinal", "start_char", "end_char", "token_count", "text"
    )
    who = query_text(request, "user")
    access, who_error = None, ""
    if who:
        subject = get_user_model().objects.filter(username=who).first()
        if subject is None:
            who_error = f"There is no user named “{who}”. Pick one from the list."
        else:
            access = document_access_explain(user=subject, document=document)
    context = {
        "document": document,
        "connector": document.connector,
        "chunks": list(chunks),
        "metadata_json": json.dumps(document.metadata or {}, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        "who": who,
        "who_error": who_error,
        "access": access,
        "usernames": list(
            get_user_model().objects.filter(is_active=True).order_by("username").values_list("username", flat=True)[
                :USERS_LISTED
            ]
        ),
    }
    return render(request, "connectors/document.html", context)


@staff_required
@require_GET
@answers_bad_input
def audit_log(request: HttpRequest):
    events = AuditEvent.objects.all()
    action = query_text(request, "action")
    actor = query_text(request, "actor")
    target = query_text(request, "target")
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_name__iexact=actor)
    if target:
        events = events.filter(Q(target_id=target) | Q(target_label__icontains=target))
    page = Paginator(events.order_by("-created_at"), AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    for event in page.object_list:
        event.details_json = json.dumps(event.details, ensure_ascii=False, sort_keys=True, default=str)
    context = {
        "page": page,
        "action": action,
        "actor": actor,
        "target": target,
        "actions": list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()),
        "filters": urlencode({k: v for k, v in (("action", action), ("actor", actor), ("target", target)) if v}),
    }
    return render(request, "connectors/audit.html", context)


@staff_required
@require_GET
@answers_bad_input
def why_missing(request: HttpRequest, connector_id):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    external_id = query_text(request, "id", max_chars=4000)
    explanation = explain_missing(connector, external_id) if external_id else None
    context = {"connector": connector, "external_id": external_id, "explanation": explanation}
    return render(request, "connectors/why.html", context)


# --- actions ---------------------------------------------------------------------------------


@staff_required
@require_POST
def connector_action(request: HttpRequest, connector_id, action: str):
    connector = get_object_or_404(Connector.objects.admin_managed(), id=connector_id)
    detail = redirect("connectors:detail", connector.id)
    if action == "sync":
        before = SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE).first()
        run = connector_sync_start(connector=connector, actor=request.user)
        if before is not None and run.id == before.id:
            messages.info(request, _("A sync is already queued or running; it was not started twice."))
        else:
            messages.success(request, _("Sync queued."))
        return detail
    if action == "cancel":
        run = SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE).first()
        if run is None:
            messages.info(request, _("No sync is running."))
        else:
            sync_run_cancel(run=run, actor=request.user)
            messages.success(request, _("Sync cancelled; the worker stops at its next checkpoint."))
        return detail
    if action in ("pause", "resume"):
        connector_pause(connector=connector, paused=action == "pause")
        if action == "pause":
            messages.success(request, _("Paused: scheduled syncs will not run until you resume."))
        else:
            messages.success(request, _("Resumed: scheduled syncs run again."))
        return detail
    if action == "reindex":
        connector_reindex(connector=connector, actor=request.user)
        messages.success(request, _("Re-index queued: every document is embedded again from its stored text."))
        return detail
    if action == "delete":
        name = connector.name
        connector_delete(connector=connector, actor=request.user)
        messages.success(request, _("Deleted “%(name)s” and its documents.") % {"name": name})
        return redirect("connectors:list")
    raise Http404(_("No such action."))
