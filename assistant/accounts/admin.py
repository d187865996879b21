from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import NestedObjects
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User
from django.db import router
from django.template.response import TemplateResponse
from django.utils.text import capfirst
from django.utils.translation import gettext as _, ngettext

from assistant.accounts.departures import account_delete
from assistant.accounts.models import ApiToken, RevokedReason
from assistant.accounts.tokens import api_token_revoke
from connectors.library_selectors import libraries_handover_preview, library_usage, limits_listed
from connectors.models import Connector
from connectors.upload_storage import LIBRARY_KIND


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Staff see every token (never a secret: only its prefix) and can revoke them."""

    list_display = ("name", "user", "token_prefix", "scopes", "status", "revoked_reason", "created_at",
                    "last_used_at", "expires_at")
    list_filter = ("revoked_reason",)
    search_fields = ("name", "user__username", "token_prefix")
    readonly_fields = ("id", "user", "name", "token_prefix", "created_at", "last_used_at", "expires_at", "revoked_at",
                       "revoked_reason", "scopes")
    exclude = ("token_hash", "notice_pending")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # users create their own tokens, on the API tokens page

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token, reason=RevokedReason.ADMIN)
        self.message_user(request, f"Revoked {queryset.count()} token(s).")


def _without_items(items: list, prefix: str) -> list:
    """Django's nested list of objects to delete without the items starting with `prefix` and the
    objects nested under them."""
    kept, skip_nested = [], False
    for item in items:
        if isinstance(item, list):
            if not skip_nested:
                kept.append(_without_items(item, prefix))
            skip_nested = False
            continue
        skip_nested = str(item).startswith(prefix)
        if not skip_nested:
            kept.append(item)
    return kept


def _successor(request, user):
    """Who takes over `user`'s shared libraries: the admin deleting the account (deleting yourself:
    nobody takes over, and they go with you)."""
    return request.user if user.pk != request.user.pk else None


def delete_selected_with_handover(modeladmin, request, queryset):
    """Django's "Delete selected users", whose confirmation page also says which libraries come to
    the admin and which of their limits they would be over."""
    response = delete_selected(modeladmin, request, queryset)
    if isinstance(response, TemplateResponse):
        response.context_data["library_handover"] = libraries_handover_preview(owners=list(queryset),
                                                                               successor=request.user)
    return response


delete_selected_with_handover.short_description = delete_selected.short_description


class UserAdmin(DjangoUserAdmin):
    """Django's user admin, with deletion through account_delete (assistant/accounts/departures.py):
    the libraries the user shared with others are handed to the admin who deletes the account
    (`manage.py account_delete --libraries-to` names someone else), everything else of theirs is
    deleted, files included. The confirmation page names the libraries the admin will take over
    and warns when that takes the admin over a library limit (which, by how much: nothing is
    lost, but they can add nothing until back under); the message after the deletion says it again."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (delete_selected_with_handover, name, description)
        return actions

    def render_delete_form(self, request, context):
        user = context.get("object")
        if user is not None:
            context["library_handover"] = libraries_handover_preview(owners=[user],
                                                                     successor=_successor(request, user))
        return super().render_delete_form(request, context)

    def get_deleted_objects(self, objs, request):
        """Django's list of what a deletion takes along, without the users' libraries: a library
        never appears in the admin (its name, files and documents are its owner's), and those
        handed over are not deleted at all. The notice above the list says what becomes of them."""
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        libraries = list(Connector.objects.filter(owner__in=[user.pk for user in objs], kind=LIBRARY_KIND))
        if libraries:
            collector = NestedObjects(using=router.db_for_write(Connector))
            collector.collect(libraries)
            model_count = dict(model_count)
            for model, found in collector.model_objs.items():
                key = model._meta.verbose_name_plural
                if key in model_count:
                    model_count[key] -= len(found)
                    if model_count[key] <= 0:
                        del model_count[key]
            to_delete = _without_items(to_delete, f"{capfirst(Connector._meta.verbose_name)}: ")
        return to_delete, model_count, perms_needed, protected

    def delete_model(self, request, obj):
        if self._delete(request, obj):
            self._over_limits_message(request)

    def delete_queryset(self, request, queryset):
        handed = [self._delete(request, user) for user in queryset]
        if any(handed):
            self._over_limits_message(request)

    def _delete(self, request, user) -> bool:
        """Delete the account; whether libraries came to the admin."""
        left = account_delete(user=user, actor=request.user, successor=_successor(request, user))
        self._left_message(request, user, left)
        return bool(left.handed_over)

    def _left_message(self, request, user, left) -> None:
        if left.handed_over:
            count = len(left.handed_over)
            self.message_user(
                request,
                ngettext(
                    "%(count)d library that %(user)s shared with colleagues is now yours, shared as before: "
                    "%(names)s. See Libraries.",
                    "%(count)d libraries that %(user)s shared with colleagues are now yours, shared as before: "
                    "%(names)s. See Libraries.",
                    count,
                ) % {"count": count, "user": user.get_username(), "names": ", ".join(left.handed_over)},
                messages.WARNING,
            )

    def _over_limits_message(self, request) -> None:
        """Once the deletions that handed libraries to the admin are done: the limits they are over now."""
        over = library_usage(owner=request.user).over_limits()
        if over:
            self.message_user(
                request,
                _("You are now over your library limits: %(limits)s. Nothing was lost, but you cannot create a "
                  "library or add files until you are back under them: remove files or libraries on Libraries, "
                  "or raise the settings named.") % {"limits": limits_listed(over)},
                messages.WARNING,
            )


admin.site.unregister(User)
admin.site.register(User, UserAdmin)
