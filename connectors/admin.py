"""Django admin for connectors: create one, press "Sync now", watch its runs."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from connectors import audit
from connectors.models import AuditEvent, Connector, Document, SyncFailure, SyncRun
from connectors.services import connector_acl_apply, connector_sync_start, sync_run_cancel
from connectors.sources.base import SourceError
from connectors.sources.registry import build_source, kind_choices
from connectors.upload_storage import FILE_KINDS, upload_dir_remove


class ConnectorForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=kind_choices)

    class Meta:
        model = Connector
        fields = ["name", "kind", "description", "config", "is_public", "groups", "sync_interval", "is_paused"]

    def clean(self):
        cleaned = super().clean()
        kind, config = cleaned.get("kind"), cleaned.get("config")
        if kind and config is not None:
            try:
                build_source(kind, config)
            except SourceError as exc:
                self.add_error("config", str(exc))
        return cleaned


class SyncFailureInline(admin.TabularInline):
    model = SyncFailure
    extra = 0
    can_delete = False
    readonly_fields = ["external_id", "reason", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class SyncRunInline(admin.TabularInline):
    model = SyncRun
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = [
        "status", "trigger", "seen", "added", "updated", "unchanged", "deleted", "failed", "created_at",
        "finished_at", "error",
    ]
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-created_at")


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    list_display = ["name", "kind", "status", "last_success_at", "document_count", "last_error", "is_paused"]
    list_filter = ["kind", "status", "is_paused"]
    search_fields = ["name"]
    filter_horizontal = ["groups"]
    inlines = [SyncRunInline]
    actions = ["sync_now"]
    readonly_fields = ["status", "last_sync_at", "last_success_at", "last_error"]
    change_form_template = "admin/connectors/connector/change_form.html"

    @admin.display(description="Documents")
    def document_count(self, obj: Connector) -> int:
        return obj.documents.count()

    def get_queryset(self, request):
        return super().get_queryset(request).admin_managed()  # a user's library is theirs alone

    def get_urls(self):
        return [
            path(
                "<uuid:connector_id>/sync/",
                self.admin_site.admin_view(self.sync_view),
                name="connectors_connector_sync",
            ),
            *super().get_urls(),
        ]

    def sync_view(self, request, connector_id):
        connector = get_object_or_404(Connector.objects.admin_managed(), pk=connector_id)
        if not self.has_change_permission(request, connector):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:connectors_connector_change", args=[connector.pk]))
        run = connector_sync_start(connector=connector, actor=request.user)
        self.message_user(request, f"Sync of “{connector}” is {run.get_status_display().lower()}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:connectors_connector_change", args=[connector.pk]))

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        for connector in queryset:
            connector_sync_start(connector=connector, actor=request.user)
        self.message_user(request, f"Queued a sync of {queryset.count()} connector(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        if change:
            previous = Connector.objects.get(pk=obj.pk)
            obj._audit_acl_before = (previous.is_public, previous.acl_group_names())
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Groups are saved with the related objects; apply the ACL once they are.
        connector = form.instance
        connector_acl_apply(connector=connector)
        fields = sorted(set(form.changed_data) - {"groups", "is_public"})
        if not change:
            audit.audit_record(
                actor=request.user, action=audit.CONNECTOR_CREATED, target=connector,
                details={"kind": connector.kind, "via": "admin", "public": connector.is_public,
                         "groups": connector.acl_group_names()},
            )
            return
        if fields:
            audit.audit_record(
                actor=request.user, action=audit.CONNECTOR_CHANGED, target=connector,
                details={"via": "admin", "fields": fields},
            )
        before = getattr(connector, "_audit_acl_before", None)
        after = (connector.is_public, connector.acl_group_names())
        if before is not None and before != after:
            audit.audit_record(
                actor=request.user, action=audit.ACL_CHANGED, target=connector,
                details={"via": "admin", "public": {"from": before[0], "to": after[0]},
                         "groups": {"from": before[1], "to": after[1]}},
            )

    def delete_model(self, request, obj):
        audit.audit_record(
            actor=request.user, action=audit.CONNECTOR_DELETED, target=obj, details={"kind": obj.kind, "via": "admin"}
        )
        folders = _file_folders([obj])
        super().delete_model(request, obj)
        _folders_remove_on_commit(folders)

    def delete_queryset(self, request, queryset):
        deleted = list(queryset)
        folders = _file_folders(deleted)
        for obj in deleted:
            audit.audit_record(
                actor=request.user, action=audit.CONNECTOR_DELETED, target=obj,
                details={"kind": obj.kind, "via": "admin"},
            )
        super().delete_queryset(request, queryset)
        _folders_remove_on_commit(folders)


def _file_folders(connectors) -> list:
    """The ids of the upload connectors among `connectors` (taken before deleting clears them)."""
    return [connector.id for connector in connectors if connector.kind in FILE_KINDS]


def _folders_remove_on_commit(connector_ids) -> None:
    """An upload connector deleted here loses its folder too, once the deletion commits (as
    connectors.services.connector_delete does)."""
    for connector_id in connector_ids:
        transaction.on_commit(lambda connector_id=connector_id: upload_dir_remove(connector_id=connector_id))


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["connector", "status", "trigger", "seen", "added", "updated", "unchanged", "deleted", "failed",
                    "created_at", "duration"]
    list_filter = ["status", "trigger", ("connector", admin.RelatedOnlyFieldListFilter)]
    readonly_fields = [f.name for f in SyncRun._meta.fields] + ["duration"]
    inlines = [SyncFailureInline]
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(connector__owner__isnull=True)

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        for run in queryset:
            sync_run_cancel(run=run, actor=request.user)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "connector", "external_id", "acl_public", "indexed_at"]
    list_filter = [("connector", admin.RelatedOnlyFieldListFilter), "acl_public"]
    search_fields = ["title", "external_id"]
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(connector__owner__isnull=True)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: nobody edits or deletes history from the admin."""

    list_display = ["created_at", "actor_name", "action", "target_type", "target_label", "ip"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_name", "target_id", "target_label"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
