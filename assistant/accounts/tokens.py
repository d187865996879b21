"""Personal API tokens: create (shown once), list, revoke, and authenticate a request's token.

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

from assistant.accounts.models import ApiToken

TOKEN_PREFIX = "ea_"
PREFIX_SHOWN = len(TOKEN_PREFIX) + 6  # "ea_" and 6 characters of the secret, shown in lists
MAX_NAME_CHARS = 100
MAX_EXPIRY_DAYS = 3650
MAX_ACTIVE_TOKENS = 50
#: last_used_at is written at most this often per token, so busy clients do not write on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


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


@transaction.atomic
def api_token_create(*, user, name: str, expires_in_days: int | str | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it and the secret, which is never available again."""
    name = " ".join((name or "").split())
    if not name:
        raise InvalidTokenInput(_("Give the token a name, e.g. the tool that will use it."))
    if len(name) > MAX_NAME_CHARS:
        raise InvalidTokenInput(
            _("The name is too long (%(length)s characters); the limit is %(limit)s.")
            % {"length": len(name), "limit": MAX_NAME_CHARS}
        )
    days = _parse_expiry_days(expires_in_days)
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
    )
    return token, secret


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke the token at once; revoking twice keeps the first time."""
    if token.revoked_at is None:
        now = timezone.now()
        ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(revoked_at=now)
        token.refresh_from_db(fields=["revoked_at"])
    return token


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
        raise TokenAuthError("This API token was revoked. Create a new one on the API tokens page.",
                             code="revoked_api_key")
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenAuthError("This API token has expired. Create a new one on the API tokens page.",
                             code="expired_api_key")
    if not token.user.is_active:
        raise TokenAuthError("The account this API token belongs to is disabled.", code="account_disabled")
    # One cheap conditional write: only when the stored time is older than the resolution.
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    if ApiToken.objects.filter(stale, id=token.id).update(last_used_at=now):
        token.last_used_at = now
    return token
