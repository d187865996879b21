"""Sharing a conversation read-only with named colleagues or with groups its owner belongs to.

A share is live: a viewer sees the conversation's shown branch as it is when they open it,
later turns included, never a copy frozen at sharing time (assistant/chat/shared_view.py
re-checks every citation against the viewer). Only the owner shares and revokes; a revoked
share (a deleted row) stops the next request. A group share counts only while the owner is
still in that group, and a deleted conversation is shared with nobody. Each share and revoke
is written to the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from assistant.chat.models import Conversation, ConversationShare, Message
from assistant.chat.services import InvalidInput
from connectors.audit import audit_record

SHARED = "conversation.shared"
UNSHARED = "conversation.unshared"
#: Colleagues plus groups named in one request.
MAX_RECIPIENTS = 50
_SEPARATORS = re.compile(r"[\s,;]+")


class ShareRefused(InvalidInput):
    """A share the owner must change; `field` names the input at fault (usernames or groups)."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def usernames_split(values: list[str]) -> list[str]:
    """Usernames as typed ("ana, bo; cy"), each once, in order."""
    names = [name for value in values for name in _SEPARATORS.split(value) if name]
    return list(dict.fromkeys(names))


def _recipients(*, owner, usernames: list[str], groups: list[str]) -> tuple[list, list[Group]]:
    """The active users and the owner's own groups named; ShareRefused for anything else."""
    if len(usernames) + len(groups) > MAX_RECIPIENTS:
        raise ShareRefused(_("Share with at most %(n)d colleagues and groups at once.") % {"n": MAX_RECIPIENTS},
                           field="usernames")
    users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=usernames, is_active=True)}
    for name in usernames:
        if name == owner.get_username():
            raise ShareRefused(_("This conversation is already yours: name a colleague."), field="usernames")
        if name not in users:
            raise ShareRefused(_("No colleague has the username “%(name)s”.") % {"name": name}, field="usernames")
    own = {g.name: g for g in owner.groups.filter(name__in=groups)}
    for name in groups:
        if name not in own:
            # The same words whether the group exists or not: its existence is not the owner's to learn here.
            raise ShareRefused(
                _("You can share only with groups you belong to; “%(name)s” is not one of yours.") % {"name": name},
                field="groups",
            )
    return [users[n] for n in usernames], [own[n] for n in dict.fromkeys(groups)]


@transaction.atomic
def conversation_share(*, conversation: Conversation, actor, usernames: list[str], groups: list[str]
                       ) -> list[ConversationShare]:
    """Share `conversation` (the actor's own) with the named colleagues and groups; returns the new
    shares (one already there is kept as it is). Audited as "conversation.shared" per recipient."""
    if conversation.user_id != actor.pk:
        raise ShareRefused(_("Only the conversation's owner can share it."), field="usernames")
    usernames = usernames_split(usernames)
    if not usernames and not groups:
        raise ShareRefused(_("Name a colleague or pick a group to share with."), field="usernames")
    users, own_groups = _recipients(owner=actor, usernames=usernames, groups=groups)
    created = []
    for user in users:
        share, new = ConversationShare.objects.get_or_create(conversation=conversation, user=user,
                                                            defaults={"created_by": actor})
        if new:
            created.append(share)
            _audit(actor, SHARED, conversation, {"user": user.get_username()})
    for group in own_groups:
        share, new = ConversationShare.objects.get_or_create(conversation=conversation, group=group,
                                                            defaults={"created_by": actor})
        if new:
            created.append(share)
            _audit(actor, SHARED, conversation, {"group": group.name})
    return created


@transaction.atomic
def conversation_share_revoke(*, share: ConversationShare, actor) -> None:
    """Stop sharing: the next page or download the recipient asks for is a 404."""
    recipient = {"user": share.user.get_username()} if share.user_id else {"group": share.group.name}
    _audit(actor, UNSHARED, share.conversation, recipient)
    share.delete()


def _audit(actor, action: str, conversation: Conversation, recipient: dict) -> None:
    # The conversation's id, never its title: the audit log is read by admins, the title is private.
    audit_record(actor=actor, action=action, target=("chat.conversation", str(conversation.id)),
                 details={"with": recipient})


# --- reads ----------------------------------------------------------------------------------------


def shares_of(*, conversation: Conversation) -> QuerySet[ConversationShare]:
    """Who the conversation is shared with, oldest first (for its owner)."""
    return conversation.shares.select_related("user", "group").order_by("created_at")


def share_get_own(*, user, share_id) -> ConversationShare:
    """A share of one of the user's conversations; DoesNotExist for anyone else's (a 404)."""
    return ConversationShare.objects.select_related("conversation", "user", "group").get(
        id=share_id, conversation__user=user, conversation__deleted_at__isnull=True
    )


def shares_reaching(*, user) -> QuerySet[ConversationShare]:
    """The shares that give `user` a conversation of someone else's now: to them by name, or to a
    group of theirs that the owner still belongs to; never of a deleted conversation."""
    if not user.is_authenticated or not user.is_active:
        return ConversationShare.objects.none()
    membership = Group.user_set.through.objects.filter(group_id=OuterRef("group_id"),
                                                       user_id=OuterRef("conversation__user_id"))
    return (
        ConversationShare.objects.filter(conversation__deleted_at__isnull=True)
        .exclude(conversation__user=user)
        .filter(Q(user=user) | (Q(group__in=user.groups.all()) & Exists(membership)))
    )


def conversation_get_shared(*, user, conversation_id) -> Conversation:
    """A conversation shared with `user` (or their own: its owner may look at what viewers see);
    Conversation.DoesNotExist otherwise, which views answer with a 404."""
    reachable = shares_reaching(user=user).values("conversation_id")
    return Conversation.objects.select_related("user").get(
        Q(user=user) | Q(id__in=reachable), id=conversation_id, deleted_at__isnull=True
    )


def message_get_readable(*, user, message_id) -> Message:
    """A message of the user's own conversations or of one shared with them (DoesNotExist otherwise)."""
    reachable = shares_reaching(user=user).values("conversation_id")
    return Message.objects.select_related("conversation").get(
        Q(conversation__user=user) | Q(conversation_id__in=reachable), id=message_id,
        conversation__deleted_at__isnull=True,
    )


@dataclass
class SharedConversation:
    conversation: Conversation
    owner_name: str
    shared_at: object  # the earliest share that reaches the viewer
    groups: list[str] = field(default_factory=list)  # the groups it reaches them through (empty: by name)


def conversations_shared_with(*, user) -> list[SharedConversation]:
    """The "Shared with me" list: conversations of others shared with `user`, latest activity first."""
    shares = shares_reaching(user=user).select_related("conversation__user", "group").order_by("created_at")
    found: dict = {}
    for share in shares:
        entry = found.get(share.conversation_id)
        if entry is None:
            owner = share.conversation.user
            entry = found[share.conversation_id] = SharedConversation(
                share.conversation, owner.get_full_name() or owner.get_username(), share.created_at
            )
        if share.group_id:
            entry.groups.append(share.group.name)
    return sorted(found.values(), key=lambda e: e.conversation.updated_at, reverse=True)
