"""Staff pages for settings profiles: the list with a form for a new one, edit, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from assistant.evaluation import profiles
from assistant.evaluation.forms import ProfileForm
from assistant.evaluation.models import EvaluationProfile
from assistant.evaluation.profiles import ProfileInvalid
from connectors.request_input import answers_bad_input
from connectors.staff import staff_required


def _profile(profile_id) -> EvaluationProfile:
    profile = EvaluationProfile.objects.filter(id=profile_id).first()
    if profile is None:
        raise Http404(_("No such profile."))
    return profile


def _page(request, form: ProfileForm, *, profile=None, status=200):
    return render(request, "evaluation/profiles.html", {
        "form": form, "profile": profile, "status": status,
        "profiles": EvaluationProfile.objects.all() if profile is None else (),
    }, status=status)


def _save(request, form: ProfileForm, *, profile=None):
    """Create or update from a bound form; the page again, with the error, when it is refused."""
    if form.is_valid():
        data = form.cleaned_data
        try:
            if profile is None:
                profile = profiles.profile_create(name=data["name"], description=data["description"],
                                                  values=form.values(), user=request.user)
            else:
                profiles.profile_update(profile=profile, name=data["name"], description=data["description"],
                                        values=form.values())
        except ProfileInvalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The settings profile “%(name)s” was saved.") % {"name": profile.name})
            return redirect("evaluation:profiles")
    return _page(request, form, profile=profile, status=400)


@staff_required
@answers_bad_input
@require_http_methods(["GET", "POST"])
def profile_list(request: HttpRequest):
    if request.method == "POST":
        return _save(request, ProfileForm(request.POST))
    return _page(request, ProfileForm())


@staff_required
@answers_bad_input
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest, profile_id):
    profile = _profile(profile_id)
    if request.method == "POST":
        return _save(request, ProfileForm(request.POST), profile=profile)
    return _page(request, ProfileForm(initial=ProfileForm.initial_from(profile)), profile=profile)


@staff_required
@answers_bad_input
@require_POST
def profile_delete(request: HttpRequest, profile_id):
    profile = _profile(profile_id)
    profiles.profile_delete(profile=profile)
    messages.success(request, _("The settings profile “%(name)s” was deleted; runs made with it keep its settings.")
                     % {"name": profile.name})
    return redirect("evaluation:profiles")
