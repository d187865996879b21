"""Accounts: personal API tokens.

A token is shown once, when it is created; only its SHA-256 hash is stored, with a
short prefix that lets the user recognise it in the list ("ea_3kP9…").
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class RevokedReason(models.TextChoices):
    OWNER = "owner", _("revoked by you")
    ADMIN = "admin", _("revoked by an administrator")
    PASSWORD_CHANGED = "password_changed", _("your password changed")
    ACCOUNT_DISABLED = "account_disabled", _("your account was disabled")


#: Revocations the owner did not ask for: they are told on their next page.
AUTOMATIC_REASONS = (RevokedReason.PASSWORD_CHANGED, RevokedReason.ACCOUNT_DISABLED)


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the tool that uses it.")
    token_prefix = models.CharField(max_length=16, help_text="The first characters of the token, to recognise it.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token (hex); never the token.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, choices=RevokedReason.choices, blank=True, default="")
    #: Revoked without the owner asking (password change, account disabled) and not yet told.
    notice_pending = models.BooleanField(default=False)
    scopes = models.JSONField(
        default=list, blank=True,
        help_text="What the token may do (assistant.accounts.scopes); empty: nothing.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="apitoken_user_recent"),
            # the per-page check for a revocation notice reads only the few pending rows
            models.Index(fields=["user"], condition=models.Q(notice_pending=True), name="apitoken_notice_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def used_just_now(self) -> bool:
        """Used within the last minute (last_used_at is recorded to the minute)."""
        return self.last_used_at is not None and (timezone.now() - self.last_used_at).total_seconds() < 60

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    @property
    def scope_names(self) -> list[str]:
        from assistant.accounts.scopes import scopes_ordered

        return scopes_ordered(self.scopes)

    @property
    def status(self) -> str:
        """active, expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"
