"""Libraries pages: list, create, rename, delete; upload and remove files; share; ask.

Every signed-in user has them. A library that is not shared with the user is a 404 at every
address, and only its owner may change it (anyone else: 404 as well, never a 403 that would
confirm it exists). Forms are CSRF-protected like every POST; bad input is a 400 naming the field.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_GET, require_POST

from assistant.chat.library_pins import conversation_start_pinned
from assistant.chat.services import InvalidInput
from connectors import libraries as services
from connectors.library_selectors import (
    libraries_visible, library_files, library_get_owned, library_get_visible, library_sharing, library_usage,
)
from connectors.models import Connector
from connectors.request_input import answers_bad_input, form_list, text
from connectors.uploads import UploadError, accepted_extensions, human_size

USERNAMES_MAX_CHARS = 5000


def _visible(request: HttpRequest, library_id) -> Connector:
    try:
        return library_get_visible(user=request.user, library_id=library_id)
    except (Connector.DoesNotExist, ValidationError, ValueError):
        raise Http404(_("No such library.")) from None


def _owned(request: HttpRequest, library_id) -> Connector:
    try:
        return library_get_owned(user=request.user, library_id=library_id)
    except (Connector.DoesNotExist, ValidationError, ValueError):
        raise Http404(_("No such library.")) from None


def _usage_context(user) -> dict:
    usage = library_usage(owner=user)
    return {
        "usage": usage,
        "usage_bytes": human_size(usage.bytes),
        "usage_max_bytes": human_size(usage.max_bytes),
        "usage_percent": min(100, round(100 * max(usage.files / usage.max_files, usage.bytes / usage.max_bytes))),
        # over a limit (libraries handed over to them, a limit lowered): said before they try to add
        "usage_over": usage.over_limits(),
    }


def _list_page(request: HttpRequest, *, error: services.LibraryInvalid | None = None, form=None):
    libraries = list(libraries_visible(user=request.user))
    context = {
        "owned": [lib for lib in libraries if lib.owner_id == request.user.pk],
        "shared": [lib for lib in libraries if lib.owner_id != request.user.pk],
        "error": error,
        "form": form or {},
        **_usage_context(request.user),
    }
    return render(request, "libraries/list.html", context, status=400 if error else 200)


@login_required
@require_GET
def library_list(request: HttpRequest):
    return _list_page(request)


@login_required
@require_POST
@answers_bad_input
def library_create(request: HttpRequest):
    name = text(request.POST, "name", max_chars=1000)
    description = text(request.POST, "description", max_chars=2000)
    try:
        library = services.library_create(owner=request.user, name=name, description=description)
    except services.LibraryInvalid as exc:
        return _list_page(request, error=exc, form={"name": name, "description": description})
    messages.success(request, _("Created the library “%(name)s”. Now upload its files.") % {"name": library.name})
    return redirect("libraries:detail", library.id)


def _detail_page(request: HttpRequest, library: Connector, *, error: services.LibraryInvalid | None = None,
                 form: dict | None = None):
    is_owner = library.owner_id == request.user.pk
    groups, users = library_sharing(library)
    files = library_files(library)
    context = {
        "library": library,
        "is_owner": is_owner,
        "files": files,
        "waiting": any(f.status == "queued" for f in files),
        "shared_groups": groups,
        "shared_users": users,
        "shared_names": groups + users,
        # The owner's groups, and any it is shared with already (the owner left it, or took the
        # library over from a departed colleague): kept checked, never dropped by a save.
        "own_groups": sorted({*request.user.groups.values_list("name", flat=True), *groups}) if is_owner else [],
        "error": error,
        "form": form or {},
        "upload_max_label": human_size(settings.UPLOAD_MAX_BYTES),
        "upload_extensions": accepted_extensions(),
    }
    if is_owner:
        context.update(_usage_context(request.user))
    return render(request, "libraries/detail.html", context, status=400 if error else 200)


@login_required
@require_GET
def library_detail(request: HttpRequest, library_id):
    return _detail_page(request, _visible(request, library_id))


@login_required
@require_POST
@answers_bad_input
def library_rename(request: HttpRequest, library_id):
    library = _owned(request, library_id)
    name = text(request.POST, "name", max_chars=1000)
    description = text(request.POST, "description", max_chars=2000)
    try:
        services.library_rename(library=library, name=name, description=description)
    except services.LibraryInvalid as exc:
        library.refresh_from_db()
        return _detail_page(request, library, error=exc, form={"name": name, "description": description})
    messages.success(request, _("Saved."))
    return redirect("libraries:detail", library.id)


@login_required
@require_POST
def library_delete(request: HttpRequest, library_id):
    library = _owned(request, library_id)
    name = library.name
    services.library_delete(library=library)
    messages.success(request, _("Deleted the library “%(name)s”; answers no longer use it.") % {"name": name})
    return redirect("libraries:list")


@login_required
@require_POST
@answers_bad_input
def library_share(request: HttpRequest, library_id):
    library = _owned(request, library_id)
    groups = form_list(request.POST, "groups", max_items=services.SHARES_MAX, max_chars=150)
    raw_users = text(request.POST, "users", max_chars=USERNAMES_MAX_CHARS)
    usernames = [name for name in raw_users.replace(",", " ").split() if name]
    try:
        services.library_share_set(library=library, group_names=groups, usernames=usernames)
    except services.LibraryInvalid as exc:
        return _detail_page(request, library, error=exc, form={"users": raw_users, "groups": groups})
    messages.success(request, _("Sharing saved; it applies to the next question."))
    return redirect(reverse("libraries:detail", args=[library.id]) + "#sharing")


@login_required
@require_POST
def library_upload(request: HttpRequest, library_id):
    library = _owned(request, library_id)
    files = request.FILES.getlist("files")
    if not files:
        error = services.LibraryInvalid("files", _("Choose at least one file to upload."))
        return _detail_page(request, library, error=error)
    result = services.library_files_upload(library=library, files=files)
    if result.accepted:
        count = len(result.accepted)
        messages.success(
            request,
            ngettext(
                "Uploaded %(count)d file: %(names)s. It is being indexed.",
                "Uploaded %(count)d files: %(names)s. They are being indexed.",
                count,
            ) % {"count": count, "names": ", ".join(result.accepted)},
        )
    for name, reason in result.refused.items():
        messages.error(request, _("Refused %(name)s: %(reason)s") % {"name": name, "reason": reason})
    return redirect(reverse("libraries:detail", args=[library.id]) + "#files")


@login_required
@require_POST
@answers_bad_input
def library_file_remove(request: HttpRequest, library_id):
    library = _owned(request, library_id)
    name = text(request.POST, "name", max_chars=1000)
    try:
        services.library_file_remove(library=library, name=name)
    except UploadError as exc:
        return _detail_page(request, library, error=services.LibraryInvalid("name", str(exc)))
    messages.success(request, _("Removed %(name)s; answers no longer use it.") % {"name": name})
    return redirect(reverse("libraries:detail", args=[library.id]) + "#files")


@login_required
@require_POST
def library_ask(request: HttpRequest, library_id):
    """A new conversation that searches only this library."""
    library = _visible(request, library_id)
    try:
        conversation = conversation_start_pinned(user=request.user, library_ids=[str(library.id)])
    except InvalidInput:  # unshared in between
        raise Http404(_("No such library.")) from None
    return redirect(conversation)
