"""Sharing pages: "Shared with me", the read-only view of a shared conversation, and the owner's
share dialog's JSON endpoints (who it is shared with, share, revoke).

A conversation that is neither yours nor shared with you is a 404, like any other private object.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from assistant.chat import selectors, sharing
from assistant.chat.models import Conversation
from assistant.chat.shared_view import shared_thread, unavailable_label
from connectors.request_input import FORM_TYPES, answers_bad_input, body_fields, text_list

NAME_CHARS = 150  # Django's username length


def _or_404(read, missing: str, **kwargs):
    """What the selector `read` finds, or a 404 saying `missing` (never a hint that it exists)."""
    try:
        return read(**kwargs)
    except ObjectDoesNotExist:
        raise Http404(missing) from None


@login_required
@require_GET
def shared_list(request: HttpRequest):
    return render(request, "chat/shared_list.html",
                  {"shared": sharing.conversations_shared_with(user=request.user)})


@login_required
@require_GET
def shared_conversation(request: HttpRequest, conversation_id):
    """The read-only view: no composer, no feedback, edit, regenerate or Stop."""
    conversation = _or_404(sharing.conversation_get_shared, _("No such conversation."), user=request.user,
                           conversation_id=conversation_id)
    owner = conversation.user
    return render(request, "chat/shared.html", {
        "conversation": conversation,
        "owner_name": owner.get_full_name() or owner.get_username(),
        "is_owner": owner.pk == request.user.pk,
        "chat_messages": shared_thread(viewer=request.user, conversation=conversation),
        "unavailable_label": unavailable_label(),
    })


def _names(body, name: str, *, form: bool) -> list[str]:
    """A list of names from a JSON list, one JSON text ("ana, bo") or repeated form fields."""
    value = body.getlist(name) if form else body.get(name)
    if isinstance(value, str):
        value = [value]
    # Several names may share one text ("ana, bo"): room for a few per item, the count checked by the service.
    return text_list({name: value}, name, max_items=sharing.MAX_RECIPIENTS, max_chars=NAME_CHARS * 4)


def _shares_json(conversation: Conversation, user) -> dict:
    return {
        "view_url": reverse("chat:shared_conversation", args=[conversation.id]),
        "shares": [
            {
                "id": str(s.id),
                "kind": "user" if s.user_id else "group",
                "name": s.user.get_username() if s.user_id else s.group.name,
                "label": (s.user.get_full_name() or s.user.get_username()) if s.user_id else s.group.name,
                "created_at": s.created_at.isoformat(),
                "revoke_url": reverse("chat:api_share_revoke", args=[s.id]),
            }
            for s in sharing.shares_of(conversation=conversation)
        ],
        "groups": sorted(user.groups.values_list("name", flat=True)),
    }


@login_required
@require_http_methods(["GET", "POST"])
@answers_bad_input
def api_shares(request: HttpRequest, conversation_id):
    """GET: who the owner's conversation is shared with, and the groups they may share with.
    POST {"usernames": [...] or "ana, bo", "groups": [names]}: share it (201), or 400 naming the field."""
    conversation = _or_404(selectors.conversation_get, _("No such conversation."), user=request.user,
                           conversation_id=conversation_id)
    if request.method == "GET":
        return JsonResponse(_shares_json(conversation, request.user))
    form = request.content_type in FORM_TYPES
    body = body_fields(request)
    usernames, groups = _names(body, "usernames", form=form), _names(body, "groups", form=form)
    try:
        created = sharing.conversation_share(conversation=conversation, actor=request.user, usernames=usernames,
                                             groups=groups)
    except sharing.ShareRefused as exc:
        return JsonResponse({"error": str(exc), "param": exc.field}, status=400)
    return JsonResponse({**_shares_json(conversation, request.user), "added": len(created)}, status=201)


@login_required
@require_POST
def api_share_revoke(request: HttpRequest, share_id):
    """Stop sharing with one colleague or group; effective at the recipient's next request."""
    share = _or_404(sharing.share_get_own, _("No such share."), user=request.user, share_id=share_id)
    conversation = share.conversation
    sharing.conversation_share_revoke(share=share, actor=request.user)
    return JsonResponse(_shares_json(conversation, request.user))
