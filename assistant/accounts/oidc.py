"""Sign-in with OpenID Connect (mozilla-django-oidc), with the IdP's groups mapped to Django groups.

On when OIDC_RP_CLIENT_ID is set (see assistant/settings.py). On every sign-in:
- the user is found by the username claim (OIDC_USERNAME_CLAIM, default preferred_username,
  falling back to email then sub) or created with an unusable password;
- email, first and last name are refreshed from the claims;
- the groups claim (OIDC_GROUPS_CLAIM) becomes the user's Django groups: missing groups are
  created, groups no longer in the claim are removed. Retrieval reads group membership on
  every query, so a change at the IdP takes effect at the next sign-in's first question,
  or, for a user who stays signed in, at the next session renewal (every
  OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS; assistant/accounts/oidc_refresh.py).

A disabled account's session stops working at its next request: `get_user` refuses it
(the library's own does not check is_active).

The library checks the ID token's signature and nonce; this backend also checks its issuer
(when OIDC_ISSUER is set), audience and expiry. A local account with a password is never
taken over by an SSO identity of the same name unless OIDC_LINK_LOCAL_ACCOUNTS is on.
"""

from __future__ import annotations

import logging
import time

import jwt
import requests
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

logger = logging.getLogger(__name__)

GROUP_NAME_MAX = 150
USERNAME_MAX = 150
CLOCK_SKEW_SECONDS = 120


def claim_username(claims: dict) -> str:
    """The Django username for these claims: the configured claim, else email, else sub."""
    for name in (settings.OIDC_USERNAME_CLAIM, "email", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:USERNAME_MAX]
    return ""


def claim_groups(claims: dict) -> list[str]:
    """Group names from the groups claim: a list of names, or one comma-separated string.

    Keycloak's full paths ("/staff/engineering") keep their path without the leading slash.
    """
    if not settings.OIDC_GROUPS_CLAIM:
        return []
    raw = claims.get(settings.OIDC_GROUPS_CLAIM)
    if raw is None:
        return []
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list | tuple) else []
    names = set()
    for item in items:
        if not isinstance(item, str):
            continue
        name = item.strip().lstrip("/")
        if not name:
            continue
        if len(name) > GROUP_NAME_MAX:
            logger.warning("OIDC group %r ignored: longer than %d characters", name[:40], GROUP_NAME_MAX)
            continue
        names.add(name)
    return sorted(names)


@transaction.atomic
def user_groups_sync(*, user, names: list[str]) -> tuple[list[str], list[str]]:
    """Make the user's groups exactly `names` (creating missing groups); returns (added, removed)."""
    current = set(user.groups.values_list("name", flat=True))
    wanted = set(names)
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if added:
        groups = [Group.objects.get_or_create(name=name)[0] for name in added]
        user.groups.add(*groups)
    if removed:
        user.groups.remove(*Group.objects.filter(name__in=removed))
    if added or removed:
        from connectors import audit

        logger.info("OIDC sign-in of %s: groups added %s, removed %s", user.get_username(), added, removed)
        audit.audit_record(
            actor=None, action=audit.GROUPS_SYNCED, target=user,
            details={"via": "oidc", "added": added, "removed": removed},
        )
    return added, removed


class GroupsOIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        if not settings.OIDC_ENABLED or "username" in kwargs or "password" in kwargs:
            return None  # a local sign-in, or SSO is off
        try:
            return super().authenticate(request, **kwargs)
        except (SuspiciousOperation, jwt.InvalidTokenError, requests.RequestException) as exc:
            # A forged, foreign or expired token, or an unreachable provider: the sign-in fails
            # (the callback sends the browser back to the login page with a message).
            logger.warning("OIDC sign-in refused: %s", exc.__class__.__name__ if isinstance(
                exc, requests.RequestException) else exc)
            return None

    def get_user(self, user_id):
        """The session's user, unless the account was disabled meanwhile (then: signed out)."""
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    @staticmethod
    def user_can_authenticate(user) -> bool:
        return getattr(user, "is_active", True)

    def store_tokens(self, access_token, id_token):
        """Keep the access token in the (server-side) session when a userinfo endpoint is set:
        the session renewal of non-page requests asks userinfo with it (oidc_refresh.py)."""
        super().store_tokens(access_token, id_token)
        if settings.OIDC_OP_USER_ENDPOINT and access_token:
            self.request.session["oidc_access_token"] = access_token

    # --- the ID token ---------------------------------------------------------------------------
    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)  # signature and nonce
        now = time.time()
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token was issued for another client (aud).")
        if settings.OIDC_ISSUER and payload.get("iss") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("The ID token comes from another issuer (iss).")
        exp = payload.get("exp")
        if not isinstance(exp, int | float) or exp + CLOCK_SKEW_SECONDS < now:
            raise SuspiciousOperation("The ID token has expired (exp).")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims, completed by the userinfo endpoint when one is configured."""
        claims = dict(payload)
        if settings.OIDC_OP_USER_ENDPOINT:
            userinfo = super().get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("The userinfo answer is about another subject (sub).")
            claims.update(userinfo)
        return claims

    # --- the user --------------------------------------------------------------------------------
    def verify_claims(self, claims):
        return bool(claims.get("sub")) and bool(claim_username(claims))

    def filter_users_by_claims(self, claims):
        username = claim_username(claims)
        if not username:
            return self.UserModel.objects.none()
        users = self.UserModel.objects.filter(username=username)
        user = users.first()
        if user is not None and user.has_usable_password() and not settings.OIDC_LINK_LOCAL_ACCOUNTS:
            logger.warning("OIDC sign-in as %s refused: a local account with a password has that name", username)
            raise SuspiciousOperation(
                "A local account has this username; set OIDC_LINK_LOCAL_ACCOUNTS to let single sign-on use it."
            )
        return users

    def create_user(self, claims):
        user = self.UserModel(username=claim_username(claims))
        user.set_unusable_password()
        self._copy_claims(user, claims)
        user.save()
        user_groups_sync(user=user, names=claim_groups(claims))
        return user

    def update_user(self, user, claims):
        if not user.is_active:
            raise SuspiciousOperation("This account is deactivated.")
        self._copy_claims(user, claims)
        user.save(update_fields=["email", "first_name", "last_name"])
        user_groups_sync(user=user, names=claim_groups(claims))
        return user

    @staticmethod
    def _copy_claims(user, claims: dict) -> None:
        email = claims.get("email")
        if isinstance(email, str) and (claims.get("email_verified") is not False):
            user.email = email.strip()[:254]
        for field, claim in (("first_name", "given_name"), ("last_name", "family_name")):
            value = claims.get(claim)
            if isinstance(value, str):
                setattr(user, field, value.strip()[:150])
