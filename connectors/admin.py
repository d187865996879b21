"""Django admin for connectors: create one, press "Sync now", watch its runs."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from connectors.models import Connector, Document, SyncFailure, SyncRun
from connectors.services import connector_acl_apply, connector_sync_start, sync_run_cancel
from connectors.sources.base import SourceError
from connectors.sources.registry import build_source, kind_choices


class ConnectorForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=kind_choices)

    class Meta:
        model = Connector
        fields = ["name", "kind", "config", "is_public", "groups", "sync_interval", "is_paused"]

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
        connector = get_object_or_404(Connector, pk=connector_id)
        if not self.has_change_permission(request, connector):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:connectors_connector_change", args=[connector.pk]))
        run = connector_sync_start(connector=connector)
        self.message_user(request, f"Sync of “{connector}” is {run.get_status_display().lower()}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:connectors_connector_change", args=[connector.pk]))

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        for connector in queryset:
            connector_sync_start(connector=connector)
        self.message_user(request, f"Queued a sync of {queryset.count()} connector(s).", messages.SUCCESS)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Groups are saved with the related objects; apply the ACL once they are.
        connector_acl_apply(connector=form.instance)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["connector", "status", "trigger", "seen", "added", "updated", "unchanged", "deleted", "failed",
                    "created_at", "duration"]
    list_filter = ["status", "trigger", "connector"]
    readonly_fields = [f.name for f in SyncRun._meta.fields] + ["duration"]
    inlines = [SyncFailureInline]
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        for run in queryset:
            sync_run_cancel(run=run)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "connector", "external_id", "acl_public", "indexed_at"]
    list_filter = ["connector", "acl_public"]
    search_fields = ["title", "external_id"]
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request):
        return False
