"""The page where a user creates, sees and revokes their personal API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from assistant.accounts.middleware import revocation_notice_text
from assistant.accounts.models import ApiToken
from assistant.accounts.scopes import DEFAULT_SCOPES, SCOPES
from assistant.accounts.tokens import (
    MAX_EXPIRY_DAYS,
    InvalidTokenInput,
    api_token_create,
    api_token_get,
    api_token_notice_take,
    api_token_revocation_shown,
    api_token_revoke,
    api_tokens_of,
)
from connectors.request_input import RequestInvalid, check_text, text

EXPIRY_CHOICES = [("", _("Never")), ("7", _("7 days")), ("30", _("30 days")), ("90", _("90 days")),
                  ("365", _("1 year"))]


def _page(request: HttpRequest, *, status: int = 200, **extra):
    revocation = api_token_revocation_shown(user=request.user)
    notice = revocation_notice_text(revocation) if revocation else ""
    context = {
        "tokens": api_tokens_of(user=request.user),
        "expiry_choices": EXPIRY_CHOICES,
        "max_expiry_days": MAX_EXPIRY_DAYS,
        "scope_choices": list(SCOPES.items()),
        "api_base": request.build_absolute_uri("/v1"),
        "form": {"name": "", "expires_in_days": "", "scopes": list(DEFAULT_SCOPES)},
        "revocation_notice": notice,
        # the same notice, queued as a message on an earlier page, is not shown twice
        "messages": [m for m in messages.get_messages(request) if str(m) != notice],
        **extra,
    }
    return render(request, "accounts/tokens.html", context, status=status)


@never_cache  # the response that shows a new secret must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest):
    if request.method == "GET":
        api_token_notice_take(user=request.user)  # told here by the page's banner
        return _page(request)
    try:
        form = {"name": text(request.POST, "name", max_chars=1000),
                "expires_in_days": text(request.POST, "expires_in_days", max_chars=20),
                "scopes": [check_text(value, "scopes", max_chars=40) for value in request.POST.getlist("scopes")[:10]]}
    except RequestInvalid as exc:  # the page again, with the message; nothing typed is echoed
        return _page(request, status=400, error=str(exc))
    try:
        token, secret = api_token_create(user=request.user, name=form["name"], expires_in_days=form["expires_in_days"],
                                         scopes=form["scopes"])
    except InvalidTokenInput as exc:
        return _page(request, status=400, error=str(exc), form=form)
    return _page(request, created=token, secret=secret)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id):
    try:
        token = api_token_get(user=request.user, token_id=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such token.") from None
    api_token_revoke(token=token)
    messages.success(request, _("Token “%(name)s” revoked: it no longer works.") % {"name": token.name})
    return redirect("tokens:list")
