"""Pages for staff only: a signed-out visitor goes to the sign-in page; a signed-in user who is
not staff gets a 404, never a 403 that would confirm the page exists."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _


def staff_required(view):
    """Signed out: to the sign-in page. Signed in but not staff: 404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            raise Http404(_("No such page."))
        return view(request, *args, **kwargs)

    return wrapper
