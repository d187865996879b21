"""Personal API tokens: create (shown once), list, revoke, and authenticate a request's token.

Each token carries the scopes chosen at creation (assistant/accounts/scopes.py). All of a
user's tokens are revoked, with the reason, when their password changes or their account is
disabled (assistant/accounts/credentials.py decides when).

A token is `ea_` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored: a database leak gives no usable token, and a lookup by hash needs no slow KDF
because the secret has full entropy.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from assistant.accounts.models import AUTOMATIC_REASONS, ApiToken, RevokedReason
from assistant.accounts.scopes import DEFAULT_SCOPES, SCOPES, scopes_ordered

TOKEN_PREFIX = "ea_"
PREFIX_SHOWN = len(TOKEN_PREFIX) + 6  # "ea_" and 6 characters of the secret, shown in lists
MAX_NAME_CHARS = 100
MAX_EXPIRY_DAYS = 3650
MAX_ACTIVE_TOKENS = 50
#: last_used_at is written at most this often per token, so busy clients do not write on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)
#: Audit action: all of a user's tokens revoked at once (password changed, account disabled).
API_TOKENS_REVOKED = "user.api_tokens_revoked"


class InvalidTokenInput(ValueError):
    """Input a user must fix; the message says how."""


class TokenAuthError(Exception):
    """A request's token was refused; the message says why and is fit to show the caller."""

    def __init__(self, message: str, *, code: str = "invalid_api_key"):
        super().__init__(message)
        self.code = code


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# --- selectors ------------------------------------------------------------------------------


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def api_token_get(*, user, token_id) -> ApiToken:
    """The user's token; ApiToken.DoesNotExist for anyone else's (shown as 404)."""
    return ApiToken.objects.get(id=token_id, user=user)


# --- services -------------------------------------------------------------------------------


def _parse_expiry_days(expires_in_days) -> int | None:
    if expires_in_days in (None, ""):
        return None
    try:
        days = int(str(expires_in_days).strip())
    except ValueError:
        raise InvalidTokenInput(_("Expiry must be a whole number of days, or empty for no expiry.")) from None
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise InvalidTokenInput(
            _("Expiry must be between 1 and %(limit)s days, or empty for no expiry.") % {"limit": MAX_EXPIRY_DAYS}
        )
    return days


def _parse_scopes(scopes) -> list[str]:
    chosen = list(DEFAULT_SCOPES if scopes is None else scopes)
    unknown = [str(scope)[:40] for scope in chosen if scope not in SCOPES]
    if unknown:
        raise InvalidTokenInput(_("Unknown scope: %(scopes)s.") % {"scopes": ", ".join(unknown)})
    if not chosen:
        raise InvalidTokenInput(_("Choose at least one thing the token may do."))
    return scopes_ordered(chosen)


@transaction.atomic
def api_token_create(*, user, name: str, expires_in_days: int | str | None = None,
                     scopes: list[str] | tuple[str, ...] | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it and the secret, which is never available again.

    `scopes`: what the token may do (assistant.accounts.scopes); None gives DEFAULT_SCOPES.
    """
    name = " ".join((name or "").split())
    if not name:
        raise InvalidTokenInput(_("Give the token a name, e.g. the tool that will use it."))
    if len(name) > MAX_NAME_CHARS:
        raise InvalidTokenInput(
            _("The name is too long (%(length)s characters); the limit is %(limit)s.")
            % {"length": len(name), "limit": MAX_NAME_CHARS}
        )
    days = _parse_expiry_days(expires_in_days)
    chosen_scopes = _parse_scopes(scopes)
    now = timezone.now()
    active = api_tokens_of(user=user).filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    if active.count() >= MAX_ACTIVE_TOKENS:
        raise InvalidTokenInput(
            _("You have %(limit)s active tokens; revoke one you no longer use first.") % {"limit": MAX_ACTIVE_TOKENS}
        )
    secret = _new_secret()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        token_prefix=secret[:PREFIX_SHOWN],
        token_hash=token_hash(secret),
        expires_at=now + timedelta(days=days) if days else None,
        scopes=chosen_scopes,
    )
    return token, secret


def api_token_revoke(*, token: ApiToken, reason: str = RevokedReason.OWNER) -> ApiToken:
    """Revoke the token at once; revoking twice keeps the first time and reason."""
    if token.revoked_at is None:
        now = timezone.now()
        ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=now, revoked_reason=reason)
        token.refresh_from_db(fields=["revoked_at", "revoked_reason"])
    return token


@transaction.atomic
def api_tokens_revoke_all(*, user, reason: str, actor=None) -> int:
    """Revoke every token of `user` still in force, for `reason`; returns how many.

    Used when the password changes or the account is disabled: the tokens are kept, shown as
    revoked with the reason and date, the owner is told on their next page (notice_pending)
    and the audit log records it.
    """
    now = timezone.now()
    count = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=now, revoked_reason=reason, notice_pending=reason in AUTOMATIC_REASONS,
    )
    if count:
        from connectors import audit

        # (a detail named like "tokens" would be hidden by the audit log's secret filter)
        audit.audit_record(actor=actor, action=API_TOKENS_REVOKED, target=user,
                           details={"reason": str(reason), "revoked": count})
    return count


def api_token_notice_take(*, user) -> ApiToken | None:
    """The latest token revoked without its owner asking and not yet told; marks all as told."""
    pending = list(ApiToken.objects.filter(user=user, notice_pending=True).order_by("-revoked_at")[:1])
    if pending:
        ApiToken.objects.filter(user=user, notice_pending=True).update(notice_pending=False)
    return pending[0] if pending else None


def api_token_revocation_shown(*, user) -> ApiToken | None:
    """The latest automatic revocation, while no token was created after it (the tokens page banner)."""
    tokens = api_tokens_of(user=user)
    latest = tokens.filter(revoked_reason__in=AUTOMATIC_REASONS).order_by("-revoked_at").first()
    if latest is None or tokens.filter(created_at__gt=latest.revoked_at).exists():
        return None
    return latest


def api_token_authenticate(raw: str) -> ApiToken:
    """The token (with its user) for a secret a client presented, or TokenAuthError saying why not."""
    raw = (raw or "").strip()
    if not raw:
        raise TokenAuthError("Send your API token as 'Authorization: Bearer <token>'.", code="missing_api_key")
    if not raw.startswith(TOKEN_PREFIX):
        raise TokenAuthError(
            "This is not an API token of this assistant (they start with 'ea_'). "
            "Create one on the API tokens page."
        )
    try:
        token = ApiToken.objects.select_related("user").get(token_hash=token_hash(raw))
    except ApiToken.DoesNotExist:
        raise TokenAuthError("Unknown API token. Check that it was copied whole, or create a new one.") from None
    if token.revoked_at is not None:
        why = {
            RevokedReason.PASSWORD_CHANGED: " because its owner's password changed",
            RevokedReason.ACCOUNT_DISABLED: " because its owner's account was disabled",
        }.get(token.revoked_reason, "")
        raise TokenAuthError(f"This API token was revoked{why}. Create a new one on the API tokens page.",
                             code="revoked_api_key")
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenAuthError("This API token has expired. Create a new one on the API tokens page.",
                             code="expired_api_key")
    if not token.user.is_active:
        raise TokenAuthError("The account this API token belongs to is disabled.", code="account_disabled")
    # A conditional write, only when the stored time is older than the resolution (most requests
    # skip it: the row just read says so; the condition keeps concurrent requests to one write).
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        if ApiToken.objects.filter(stale, id=token.id).update(last_used_at=now):
            token.last_used_at = now
    return token
