from django.contrib import admin

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
