"""Sign-in pages: the local form (with a limit on failed attempts) and the OIDC entry points."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.http import Http404
from django.utils.translation import gettext as _

from assistant.accounts import ratelimit
from connectors.audit import client_ip


class LoginView(auth_views.LoginView):
    """Django's login view, refusing a username+address pair after too many failed attempts."""

    template_name = "accounts/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = settings.OIDC_ENABLED
        context["oidc_provider_name"] = settings.OIDC_PROVIDER_NAME
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")
        verdict = ratelimit.login_blocked(username=username, ip=client_ip(request))
        if not verdict.allowed:
            return self._refused(verdict.retry_after)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        request = self.request
        verdict = ratelimit.login_failed(username=request.POST.get("username", ""), ip=client_ip(request))
        if not verdict.allowed:
            return self._refused(verdict.retry_after)
        return super().form_invalid(form)

    def form_valid(self, form):
        ratelimit.login_succeeded(username=form.get_user().get_username(), ip=client_ip(self.request))
        return super().form_valid(form)

    def _refused(self, retry_after: int):
        message = _(
            "Too many failed sign-ins for this username from your address. "
            "Try again in %(wait)s, or ask an administrator to reset your password."
        ) % {"wait": ratelimit.wait_phrase(retry_after)}
        form = self.get_form_class()(self.request)  # unbound: nothing typed is echoed back
        context = self.get_context_data(form=form, rate_limited=message)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(retry_after)
        return response


def _oidc_view(view_class):
    """The library's view, or a 404 while single sign-on is off."""

    def view(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404(_("Single sign-on is not configured."))
        return view_class.as_view()(request, *args, **kwargs)

    view.__name__ = view_class.__name__
    return view


def oidc_authenticate(request, *args, **kwargs):
    from mozilla_django_oidc.views import OIDCAuthenticationRequestView

    return _oidc_view(OIDCAuthenticationRequestView)(request, *args, **kwargs)


def oidc_callback(request, *args, **kwargs):
    """The provider's answer. When it renewed a signed-in session (oidc_refresh.py) and the
    renewal failed (the provider refused, the account is disabled, a token is bad), the session
    is ended: it must not go on with groups that could not be re-read."""
    from mozilla_django_oidc.views import OIDCAuthenticationCallbackView

    was_signed_in = request.user.is_authenticated
    response = _oidc_view(OIDCAuthenticationCallbackView)(request, *args, **kwargs)
    renewed = request.session.get("oidc_id_token_expiration", 0) > time.time()
    if was_signed_in and not renewed and request.user.is_authenticated:
        logout(request)
    return response
