"""When someone leaves: deleting their account, and what becomes of their libraries.

Disabling an account (is_active off, or the identity provider removing the user) is the usual
way out: it signs them out and revokes their tokens (credentials.py), and everything they own
stays. Their libraries keep serving the colleagues and groups they were shared with; nobody
can change them until the account is enabled again or deleted.

Deleting an account (account_delete: the admin's user pages, `manage.py account_delete`)
decides about their libraries first (connectors.libraries.libraries_owner_leave): one shared
with others is handed to a successor, with its sharing unchanged; everything else is deleted,
files included, because nobody but the owner could read it. The successor's limits never stop a
handover (nothing stored is lost); the limits they will be over are shown before (the admin's
confirmation page: connectors.library_selectors.libraries_handover_preview), said after (the
admin's message, the command's output) and recorded in the audit event, and until they are back
under them the successor can add no library, file or byte. Whatever path deletes a user (a
shell, a script), the pre_delete hook below still removes the folders of the libraries that go
with the account, once the deletion commits; the hourly sweep (upload_dirs_orphaned_remove)
catches folders of anything deleted behind the app's back.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import pre_delete

from connectors.audit import audit_record
from connectors.libraries import OwnerLeft, libraries_owner_leave
from connectors.models import Connector
from connectors.upload_storage import LIBRARY_KIND, upload_dir_remove

ACCOUNT_DELETED = "user.deleted"  # audit action


@transaction.atomic
def account_delete(*, user, actor=None, successor=None) -> OwnerLeft:
    """Delete `user`'s account: their shared libraries go to `successor` (if named), all their
    other libraries are deleted with their files, then the account and what it owns."""
    left = libraries_owner_leave(owner=user, successor=successor)
    audit_record(
        actor=actor, action=ACCOUNT_DELETED, target=("auth.user", str(user.pk), user.get_username()),
        details={"libraries_deleted": len(left.deleted), "libraries_handed_over": len(left.handed_over),
                 "successor": successor.get_username() if successor is not None else None,
                 # the successor's library limits they are over now (which, how much): empty if none
                 "successor_over_limits": [excess.as_dict() for excess in left.successor_over]},
    )
    user.delete()
    return left


def library_folders_release(sender, instance, **kwargs) -> None:
    """A user is being deleted by any path: the folders of libraries still theirs (which the
    deletion cascades to) are removed once it commits."""
    ids = list(Connector.objects.filter(owner_id=instance.pk, kind=LIBRARY_KIND).values_list("id", flat=True))
    for library_id in ids:
        transaction.on_commit(lambda library_id=library_id: upload_dir_remove(connector_id=library_id))


def connect_signals() -> None:
    pre_delete.connect(library_folders_release, sender=get_user_model(), dispatch_uid="accounts_library_folders")
