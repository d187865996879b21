"""Django admin: assistants (define, pick the default) and a read-only view of feedback.

Users' memories are deliberately not in the admin: they are private to each user.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from assistant.chat.assistants import (
    DefaultAssistantProtected,
    assistant_delete,
    assistant_make_default,
    assistant_tool_choices,
)
from assistant.chat.models import Assistant, Feedback, FeedbackExport
from connectors.library_selectors import libraries_visible
from connectors.models import Connector


def _connector_label(connector: Connector) -> str:
    if connector.owner_id is None:
        return connector.name
    return _("%(name)s (library of %(owner)s)") % {"name": connector.name, "owner": connector.owner.get_username()}


class AssistantForm(forms.ModelForm):
    # The registry's tools as boxes to tick (its choices are read when the form is built, so a
    # tool registered later shows up); remember/forget follow each user's memory switch instead.
    tools = forms.MultipleChoiceField(
        choices=assistant_tool_choices, required=False, widget=forms.CheckboxSelectMultiple, label=_("Tools"),
        help_text=_("What the model may call while answering, where the model server supports tools "
                    "(LLM_TOOLS). None ticked: it answers from one search, as without tools. "
                    "Remember and forget are offered to users who turned memory on."),
    )

    class Meta:
        model = Assistant
        fields = [
            "name", "description", "instructions", "connectors", "groups", "tools", "temperature", "max_tokens",
            "model_name", "is_active",
        ]
        widgets = {"connectors": forms.CheckboxSelectMultiple, "groups": forms.CheckboxSelectMultiple}

    def clean_temperature(self):
        value = self.cleaned_data.get("temperature")
        if value is not None and not 0 <= value <= 2:
            raise forms.ValidationError(_("The temperature must be between 0 and 2 (leave empty for the default)."))
        return value

    def clean_max_tokens(self):
        value = self.cleaned_data.get("max_tokens")
        if value is not None and value < 16:
            raise forms.ValidationError(_("Allow at least 16 tokens (leave empty for the default)."))
        return value

    def clean_is_active(self):
        value = self.cleaned_data.get("is_active")
        if self.instance.pk and self.instance.is_default and not value:
            raise forms.ValidationError(
                _("The default assistant cannot be deactivated. Make another one the default first.")
            )
        return value


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    form = AssistantForm
    list_display = [
        "name", "is_default", "is_active", "connector_names", "tool_names", "temperature", "max_tokens", "model_name",
    ]
    list_filter = ["is_active", "is_default"]
    search_fields = ["name", "description", "instructions"]
    actions = ["make_default", "delete_assistants"]

    @admin.display(description=_("connectors"))
    def connector_names(self, obj: Assistant) -> str:
        names = [c.name for c in obj.connectors.all()]
        return ", ".join(names) if names else _("all the user may see")

    @admin.display(description=_("tools"))
    def tool_names(self, obj: Assistant) -> str:
        return ", ".join(obj.tools) if obj.tools else _("none")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("connectors")

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Connectors to tick: the admins' ones, and the libraries this admin may read (or that the
        assistant has already): a library is only ever searched for users it is shared with."""
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("connectors")
        if field is not None:
            chosen = obj.connectors.values("id") if obj is not None and obj.pk else Connector.objects.none().values("id")
            field.queryset = Connector.objects.filter(
                Q(owner__isnull=True) | Q(id__in=libraries_visible(user=request.user).values("id")) | Q(id__in=chosen)
            ).select_related("owner").order_by("owner_id", "name")
            field.label_from_instance = _connector_label
        return form

    @admin.action(description=_("Make the selected assistant the default"))
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one assistant to make it the default."), messages.ERROR)
            return
        assistant = assistant_make_default(assistant=queryset.get())
        self.message_user(request, _("“%(name)s” is now the default assistant.") % {"name": assistant.name})

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        try:
            assistant_delete(assistant=obj)
        except DefaultAssistantProtected as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def get_actions(self, request):
        # Django's bulk delete refuses the whole selection when it holds the default assistant;
        # this one deletes the others and says that the default was kept.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Delete the selected assistants (the default one is kept)"), permissions=["delete"])
    def delete_assistants(self, request, queryset):
        if queryset.filter(is_default=True).exists():
            self.message_user(request, _("The default assistant was kept: it cannot be deleted."), messages.WARNING)
        names = []
        for assistant in queryset.filter(is_default=False):
            names.append(assistant.name)
            assistant_delete(assistant=assistant)
        if names:
            self.message_user(
                request,
                _("Deleted: %(names)s. Their conversations now use the default assistant.")
                % {"names": ", ".join(names)},
            )


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["updated_at", "user", "rating", "comment"]
    list_filter = ["rating", "updated_at"]
    search_fields = ["comment", "message__content", "user__username"]
    readonly_fields = ["message", "user", "rating", "comment", "tool_calls", "created_at", "updated_at"]

    @admin.display(description=_("Tool calls of the answer"))
    def tool_calls(self, obj: Feedback):
        """Each step of the rated answer: tool, arguments, result summary, duration, error."""
        steps = [s for s in (obj.message.steps or []) if isinstance(s, dict)]
        if not steps:
            return "—"
        rows = format_html_join(
            "", "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (s.get("tool", ""), json.dumps(s.get("arguments", {}), ensure_ascii=False)[:500], s.get("status", ""),
                 s.get("summary", ""), "" if s.get("duration_ms") is None else f"{s['duration_ms']} ms", s.get("error", ""))
                for s in steps
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("tool"), _("arguments"), _("status"), _("result"), _("duration"), _("error"),
        )
        return format_html("<table>{}{}</table>", head, rows)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FeedbackExport)
class FeedbackExportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "username", "row_count", "filters"]
    readonly_fields = ["created_at", "username", "user", "row_count", "filters"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
