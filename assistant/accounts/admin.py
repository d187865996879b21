from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User

from assistant.accounts.departures import account_delete
from assistant.accounts.models import ApiToken, RevokedReason
from assistant.accounts.tokens import api_token_revoke


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


class UserAdmin(DjangoUserAdmin):
    """Django's user admin, with deletion through account_delete (assistant/accounts/departures.py):
    the libraries the user shared with others are handed to the admin who deletes the account
    (`manage.py account_delete --libraries-to` names someone else), everything else of theirs is
    deleted, files included."""

    def delete_model(self, request, obj):
        self._delete(request, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            self._delete(request, user)

    def _delete(self, request, user) -> None:
        successor = request.user if user.pk != request.user.pk else None  # deleting yourself: nobody takes over
        self._left_message(request, user, account_delete(user=user, actor=request.user, successor=successor))

    def _left_message(self, request, user, left) -> None:
        if left.handed_over:
            self.message_user(
                request,
                f"{len(left.handed_over)} librar{'y' if len(left.handed_over) == 1 else 'ies'} that "
                f"{user.get_username()} shared with colleagues {'is' if len(left.handed_over) == 1 else 'are'} "
                f"now yours, shared as before: {', '.join(left.handed_over)}. See Libraries.",
                messages.WARNING,
            )


admin.site.unregister(User)
admin.site.register(User, UserAdmin)
