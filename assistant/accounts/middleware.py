"""Per-request account checks for browser sessions.

- A session whose account was disabled (or that no backend accepts any more) is ended on its
  next request, whatever disabled it (the admin, a script, even `QuerySet.update()`).
- The user is told, once, on their next page, that their API tokens were revoked because
  their password changed or their account was disabled (a Django message; the tokens page
  also shows it as a banner until a new token is made).
- The signed-in user is remembered for the request, so the audit events that a save of a
  user triggers (assistant/accounts/credentials.py) name who acted.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from assistant.accounts.credentials import acting_user
from assistant.accounts.models import RevokedReason
from assistant.accounts.tokens import api_token_notice_take
from connectors.middleware import HybridMiddleware

#: Requests that never show a page: no notice is taken there (it would be lost).
NO_NOTICE_PREFIXES = ("/api/", "/v1/", "/static/", "/mcp", "/admin/jsi18n/")


def revocation_notice_text(token) -> str:
    when = formats.date_format(timezone.localtime(token.revoked_at), "DATETIME_FORMAT")
    if token.revoked_reason == RevokedReason.ACCOUNT_DISABLED:
        text = _("Your API tokens were revoked on %(when)s because your account was disabled.")
    else:
        text = _("Your API tokens were revoked on %(when)s because your password changed. "
                 "Create new ones on the API tokens page.")
    return text % {"when": when}


def _shows_a_page(request) -> bool:
    return (request.method == "GET" and not request.path.startswith(NO_NOTICE_PREFIXES)
            and "text/html" in request.headers.get("Accept", "text/html"))


def check_account(request) -> None:
    """End a session whose user is gone or disabled; queue a pending revocation notice."""
    if SESSION_KEY not in request.session:
        return
    user = request.user
    if not user.is_authenticated or not user.is_active:
        logout(request)  # flushes the session: its cookie opens nothing any more
        return
    if _shows_a_page(request) and request.path != reverse("tokens:list"):  # that page has a banner
        token = api_token_notice_take(user=user)
        if token is not None:
            messages.warning(request, revocation_notice_text(token))


class AccountStateMiddleware(HybridMiddleware):
    """After AuthenticationMiddleware and MessageMiddleware."""

    def handle(self, request):
        check_account(request)
        reset = acting_user.set(request.user)
        try:
            return self.get_response(request)
        finally:
            acting_user.reset(reset)

    async def ahandle(self, request):
        await sync_to_async(check_account)(request)
        reset = acting_user.set(request.user)
        try:
            return await self.get_response(request)
        finally:
            acting_user.reset(reset)
