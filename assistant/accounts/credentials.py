"""What happens when a user's credentials change: password changed, account disabled.

- Password changed: all the user's API tokens are revoked (Django already ends their other
  sessions, since a session carries a hash of the password).
- Account disabled (is_active set to False): all their API tokens are revoked and all their
  sessions are deleted, so an open browser and a running script both stop at once.
Both are audit-logged and the user is told on their next page.

Where it is hooked, and why there: every way of changing a password (the admin's password
form, password reset, `manage.py changepassword`, a shell, a future self-service page) and of
disabling an account (the admin's user form, a script) ends in `User.save()` with a new
password hash or `is_active=False`. An explicit call at each of those places would miss the
ones nobody remembered; a `pre_save` check of the stored values cannot. So the signal
handlers below only *detect* the change (comparing with the row in the database) and call
the explicit service `user_credentials_changed`, which holds the flow. Not detected:
`QuerySet.update()`, which skips signals; for that, every request re-checks the account
(tokens: `api_token_authenticate`; sessions: `AccountStateMiddleware` and the backends'
`get_user`), so a disabled account is refused at once even then.

A hash *upgrade* (Django re-hashing the same password at sign-in with a stronger hasher,
`check_password`'s setter: `_password` reset to None, `update_fields=["password"]`) is not
a password change and revokes nothing.
"""

from __future__ import annotations

import contextvars
import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from assistant.accounts.models import RevokedReason
from assistant.accounts.tokens import api_tokens_revoke_all

logger = logging.getLogger(__name__)

#: Audit action: a disabled account's sessions were ended.
SESSIONS_ENDED = "user.sessions_ended"

#: The signed-in user serving the current request (set by AccountStateMiddleware), recorded
#: as the actor of the audit events a save triggers; None outside requests (a command).
acting_user: contextvars.ContextVar = contextvars.ContextVar("accounts_acting_user", default=None)

_PENDING_ATTR = "_credential_changes"


def user_sessions_end(*, user) -> int:
    """Delete every unexpired session signed in as `user`; returns how many.

    Sessions are stored encoded, so each unexpired one is decoded: fine for a rare admin
    action, and it covers sessions of every backend (local and single sign-on).
    """
    user_id = str(user.pk)
    ended = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get("_auth_user_id")) == user_id
    ]
    if ended:
        Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


@transaction.atomic
def user_credentials_changed(*, user, password_changed: bool = False, disabled: bool = False, actor=None) -> None:
    """Revoke the user's API tokens (and, when disabled, end their sessions) after a change."""
    from connectors import audit

    if disabled:
        api_tokens_revoke_all(user=user, reason=RevokedReason.ACCOUNT_DISABLED, actor=actor)
        ended = user_sessions_end(user=user)
        audit.audit_record(actor=actor, action=SESSIONS_ENDED, target=user,
                           details={"reason": "account_disabled", "sessions": ended})
        logger.info("Account %s disabled: API tokens revoked, %d session(s) ended", user.get_username(), ended)
    elif password_changed:
        api_tokens_revoke_all(user=user, reason=RevokedReason.PASSWORD_CHANGED, actor=actor)
        logger.info("Password of %s changed: API tokens revoked", user.get_username())


# --- detection (signal handlers; connected in AccountsConfig.ready) -----------------------------


def _is_hash_upgrade(user, stored_hash: str, update_fields) -> bool:
    """Django re-hashing the same password (check_password's setter), not a new password."""
    return (update_fields is not None and set(update_fields) == {"password"} and user._password is None
            and is_password_usable(stored_hash) and is_password_usable(user.password))


def user_changes_detect(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """pre_save: note on the instance whether its password or active flag is changing."""
    setattr(instance, _PENDING_ATTR, None)
    if raw or instance._state.adding or instance.pk is None:
        return  # fixtures, and new users (no token or session yet)
    fields = set(update_fields) if update_fields is not None else None
    if fields is not None and not fields & {"password", "is_active"}:
        return  # e.g. the last_login update at every sign-in: no extra query
    stored = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if stored is None:
        return
    password_changed = (stored["password"] != instance.password
                        and not _is_hash_upgrade(instance, stored["password"], update_fields))
    disabled = stored["is_active"] and not instance.is_active
    if password_changed or disabled:
        setattr(instance, _PENDING_ATTR, {"password_changed": password_changed, "disabled": disabled})


def user_changes_apply(sender, instance, raw=False, **kwargs) -> None:
    """post_save: act on what user_changes_detect noted, in the same transaction as the save."""
    pending = getattr(instance, _PENDING_ATTR, None)
    if not pending or raw:
        return
    setattr(instance, _PENDING_ATTR, None)
    user_credentials_changed(user=instance, actor=acting_user.get(), **pending)


def connect_signals() -> None:
    user_model = get_user_model()
    pre_save.connect(user_changes_detect, sender=user_model, dispatch_uid="accounts_user_changes_detect")
    post_save.connect(user_changes_apply, sender=user_model, dispatch_uid="accounts_user_changes_apply")
