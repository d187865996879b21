"""Re-reading a single sign-on user's groups while they stay signed in.

Groups come from the identity provider's claims; without this they would be read only at
sign-in, and a session lasts two weeks. Every OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS (default
15 minutes) the session is renewed with the provider, and its groups claim replaces the
user's groups again (assistant.accounts.oidc.user_groups_sync):

- a page the browser navigates to (GET, HTML): mozilla-django-oidc's `SessionRefresh`
  sends the browser to the provider with `prompt=none`; the provider answers at once with a
  new code (no page is shown), or with an error when the user may no longer sign in, and then
  the session is ended (assistant.accounts.signin.oidc_callback);
- any other request (the chat page's fetch and POST calls, server-sent events), where a
  redirect to another site cannot work: the provider's userinfo endpoint is asked with the
  access token kept in the session since sign-in. If it answers with the same user and a
  groups claim, the groups are refreshed and the request goes on; otherwise the request gets
  401 `{"error": ..., "code": "session_refresh_required", "login_url": ...}` and nothing else
  runs: reloading the page renews the session through the provider (or asks to sign in).
  An HTML form posted at that moment is not acted on: the browser is sent back (303) to the
  page it came from, whose load renews the session.

The token-authenticated API (/api/v1/, /v1/, /mcp) does not use sessions and is left alone: a
token acts with its owner's groups as stored, which the owner's own sessions keep fresh, and
is revoked when the account is disabled.
"""

from __future__ import annotations

import logging
import time

import requests
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh

from assistant.accounts.oidc import claim_groups, claim_username, user_groups_sync

logger = logging.getLogger(__name__)

EXPIRY_SESSION_KEY = "oidc_id_token_expiration"  # mozilla-django-oidc's name
ACCESS_TOKEN_SESSION_KEY = "oidc_access_token"  # mozilla-django-oidc's name
#: Paths that never use the session (token-authenticated APIs).
TOKEN_API_PREFIXES = ("/api/v1/", "/v1/", "/mcp")


def _is_navigation(request) -> bool:
    """A page load the browser can follow to the provider and back."""
    if request.method != "GET" or request.headers.get("x-requested-with") == "XMLHttpRequest":
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("Accept", "")


def _is_form_submission(request) -> bool:
    """A non-GET request the browser sends as a page load (an HTML form), not from a script."""
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("Accept", "") and not request.headers.get("x-requested-with")


def groups_refresh_from_userinfo(request) -> bool:
    """Refresh the signed-in user's groups from the userinfo endpoint; False if it cannot be trusted."""
    access_token = request.session.get(ACCESS_TOKEN_SESSION_KEY)
    if not (settings.OIDC_OP_USER_ENDPOINT and access_token):
        return False
    backend = OIDCAuthenticationBackend()
    try:
        claims = OIDCAuthenticationBackend.get_userinfo(backend, access_token, None, {})
    except (requests.RequestException, ValueError) as exc:
        logger.info("OIDC userinfo refresh failed: %s", exc.__class__.__name__)
        return False
    user = request.user
    if not isinstance(claims, dict) or claim_username(claims) != user.get_username():
        return False
    if settings.OIDC_GROUPS_CLAIM and settings.OIDC_GROUPS_CLAIM not in claims:
        # Without the claim, "no groups" and "not said here" look alike: refuse, never guess.
        return False
    user_groups_sync(user=user, names=claim_groups(claims))
    return True


class GroupsSessionRefresh(SessionRefresh):
    """SessionRefresh, on only with single sign-on, with a userinfo refresh for non-page requests."""

    def __init__(self, get_response):
        # The library reads its settings once, here; they are read per request instead
        # (properties below), so turning SSO on in a test or at start-up needs no reload.
        super(SessionRefresh, self).__init__(get_response)

    OIDC_EXEMPT_URLS = property(lambda self: [])
    OIDC_OP_AUTHORIZATION_ENDPOINT = property(lambda self: settings.OIDC_OP_AUTHORIZATION_ENDPOINT)
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_STATE_SIZE = property(lambda self: self.get_settings("OIDC_STATE_SIZE", 32))
    OIDC_AUTHENTICATION_CALLBACK_URL = property(lambda self: "oidc_authentication_callback")
    OIDC_RP_SCOPES = property(lambda self: settings.OIDC_RP_SCOPES)
    OIDC_USE_NONCE = property(lambda self: self.get_settings("OIDC_USE_NONCE", True))
    OIDC_NONCE_SIZE = property(lambda self: self.get_settings("OIDC_NONCE_SIZE", 32))

    @cached_property
    def exempt_urls(self):
        # (the library's own list names "oidc_logout", a URL this project does not have)
        return {reverse(name) for name in ("login", "logout", "oidc_authentication_init",
                                           "oidc_authentication_callback")}

    def _due(self, request) -> bool:
        if not settings.OIDC_ENABLED or request.path.startswith(TOKEN_API_PREFIXES):
            return False
        if request.path in self.exempt_urls or not request.user.is_authenticated:
            return False
        backend = request.session.get(BACKEND_SESSION_KEY)
        if not backend or not issubclass(import_string(backend), OIDCAuthenticationBackend):
            return False  # a local sign-in: nothing to renew
        return request.session.get(EXPIRY_SESSION_KEY, 0) <= time.time()

    def process_request(self, request):
        if not self._due(request):
            return None
        if _is_navigation(request):
            return super().process_request(request)  # prompt=none round trip to the provider
        if groups_refresh_from_userinfo(request):
            request.session[EXPIRY_SESSION_KEY] = time.time() + settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS
            return None
        if _is_form_submission(request):
            # A form posted from a page: back to that page (GET), whose load renews the session
            # through the provider; the form was not acted on.
            referer = request.headers.get("Referer", "")
            safe = url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()},
                                                   require_https=request.is_secure())
            return HttpResponseRedirect(referer if safe else resolve_url(settings.LOGIN_REDIRECT_URL), status=303)
        return JsonResponse({
            "error": _("Your sign-in needs renewing. Reload the page to continue."),
            "code": "session_refresh_required",
            "login_url": reverse("oidc_authentication_init"),
        }, status=401)
