"""Libraries: sets of files that users upload and share themselves (writes).

A library is a connector of kind "library" with an owner. Its files live in its upload folder
and are checked, synced and indexed exactly as an admin's uploads are (connectors.uploads, the
sync engine). Its ACL is its sharing: the groups the owner picked (only groups the owner is
in), the colleagues named, and the owner, copied onto every document and chunk by
connector_acl_apply, so retrieval, citations and document pages enforce it like any other ACL.
Unsharing, removing a file or deleting the library takes effect in the same transaction.

When the owner's account is deleted (libraries_owner_leave), a library shared with nobody is
deleted with its files; one shared with others is handed to a successor the admin names, with
its sharing unchanged, or deleted too when no successor is named (README, "Libraries"). The
handover never checks the successor's limits (nothing stored is dropped); it reports the limits
they are over afterwards, and until they are back under, they can add neither a library nor a
file nor a byte (library_create, uploads.UploadQuota), each refusal saying why and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _, ngettext

from connectors import uploads
from connectors.library_selectors import LimitExcess, library_is_shared, library_quota, library_usage
from connectors.models import Connector, Document, SyncRun
from connectors.principals import is_user_principal
from connectors.services import connector_acl_apply, sync_run_cancel
from connectors.upload_storage import LIBRARY_KIND, upload_dir_ensure, upload_dir_for, upload_dir_remove

NAME_MAX_CHARS = 200
DESCRIPTION_MAX_CHARS = 500
SHARES_MAX = 100  # groups plus colleagues of one library


class LibraryInvalid(ValueError):
    """A request about a library that cannot be done as asked; `field` names the form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise LibraryInvalid("name", _("Give the library a name."))
    if len(name) > NAME_MAX_CHARS:
        raise LibraryInvalid("name", _("A library name has at most %(limit)d characters.") % {"limit": NAME_MAX_CHARS})
    return name


def _clean_description(description: str) -> str:
    description = " ".join((description or "").split())
    if len(description) > DESCRIPTION_MAX_CHARS:
        raise LibraryInvalid(
            "description", _("A description has at most %(limit)d characters.") % {"limit": DESCRIPTION_MAX_CHARS}
        )
    return description


def _name_free(*, owner, name: str, library: Connector | None = None) -> None:
    taken = Connector.objects.filter(owner=owner, name=name)
    if library is not None:
        taken = taken.exclude(id=library.id)
    if taken.exists():
        raise LibraryInvalid("name", _("You already have a library named “%(name)s”.") % {"name": name})


@transaction.atomic
def library_create(*, owner, name: str, description: str = "") -> Connector:
    """A new, private, empty library of `owner`."""
    name, description = _clean_name(name), _clean_description(description)
    get_user_model().objects.select_for_update().filter(pk=owner.pk).first()  # one create at a time per user
    count, limit = Connector.objects.filter(owner=owner, kind=LIBRARY_KIND).count(), settings.LIBRARY_MAX_LIBRARIES
    if count > limit:  # libraries handed over to them, or a limit lowered since: nothing is taken away
        remove = count - limit + 1
        raise LibraryInvalid(
            "name",
            ngettext(
                "You have %(count)d libraries, more than your limit of %(limit)d (for example after libraries "
                "were handed over to you), so you cannot create one: delete %(remove)d of them first, or ask an "
                "administrator to raise the limit.",
                "You have %(count)d libraries, more than your limit of %(limit)d (for example after libraries "
                "were handed over to you), so you cannot create one: delete %(remove)d of them first, or ask an "
                "administrator to raise the limit.",
                remove,
            ) % {"count": count, "limit": limit, "remove": remove},
        )
    if count >= limit:
        raise LibraryInvalid(
            "name", _("You have %(count)d libraries, the most allowed; delete one first.") % {"count": limit}
        )
    _name_free(owner=owner, name=name)
    library = Connector(kind=LIBRARY_KIND, owner=owner, name=name, description=description, is_public=False)
    library.config = {"path": str(upload_dir_for(library))}  # set here, never typed by anyone
    library.save()
    upload_dir_ensure(library)
    return library


@transaction.atomic
def library_rename(*, library: Connector, name: str, description: str | None = None) -> Connector:
    library.name = _clean_name(name)
    fields = ["name", "updated_at"]
    if description is not None:
        library.description = _clean_description(description)
        fields.append("description")
    _name_free(owner=library.owner, name=library.name, library=library)
    library.save(update_fields=fields)
    return library


@transaction.atomic
def library_delete(*, library: Connector) -> None:
    """Delete a library: its documents and chunks leave the index now, its files right after."""
    for run in SyncRun.objects.filter(connector=library, status__in=SyncRun.ACTIVE):
        sync_run_cancel(run=run)
    library_id = library.id
    library.delete()
    transaction.on_commit(lambda: upload_dir_remove(connector_id=library_id))


def _groups_to_share(*, owner, names: list[str], library: Connector) -> list[Group]:
    """The groups named: the owner's own, or ones the library is shared with already (a share
    may be kept after its owner left the group or took the library over, never widened)."""
    wanted = sorted({" ".join(name.split()) for name in names if name and name.strip()})
    own = {group.name: group for group in [*owner.groups.all(), *library.groups.all()]
           if not is_user_principal(group.name)}
    foreign = [name for name in wanted if name not in own]
    if foreign:
        raise LibraryInvalid(
            "groups",
            _("You can share only with groups you belong to; you are not in %(names)s.")
            % {"names": ", ".join(f"“{name}”" for name in foreign)},
        )
    return [own[name] for name in wanted]


def _colleagues_to_share(*, owner, usernames: list[str]) -> list:
    wanted = sorted({name.strip() for name in usernames if name and name.strip()} - {owner.get_username()})
    users = {
        user.get_username(): user
        for user in get_user_model().objects.filter(username__in=wanted, is_active=True)
    }
    unknown = [name for name in wanted if name not in users]
    if unknown:
        raise LibraryInvalid(
            "users",
            _("There is no colleague with the username %(names)s.") % {"names": ", ".join(f"“{n}”" for n in unknown)},
        )
    return [users[name] for name in wanted]


@transaction.atomic
def library_share_set(*, library: Connector, group_names: list[str], usernames: list[str]) -> Connector:
    """Share the library with exactly these groups (the owner's own) and colleagues (by username);
    everyone else loses access at once, in this transaction (documents and chunks re-stamped)."""
    owner = library.owner
    groups = _groups_to_share(owner=owner, names=group_names, library=library)
    colleagues = _colleagues_to_share(owner=owner, usernames=usernames)
    if len(groups) + len(colleagues) > SHARES_MAX:
        raise LibraryInvalid(
            "users", _("A library is shared with at most %(limit)d groups and colleagues.") % {"limit": SHARES_MAX}
        )
    library.groups.set(groups)
    library.shared_users.set(colleagues)
    connector_acl_apply(connector=library)
    return library


@transaction.atomic
def library_files_upload(*, library: Connector, files: list[UploadedFile]) -> uploads.UploadResult:
    """Check and store files in the library (the owner's limits, then every check of an upload),
    then queue the sync that indexes them."""
    # One upload at a time per owner: two in parallel cannot both take the last room.
    get_user_model().objects.select_for_update().filter(pk=library.owner_id).first()
    quota = library_quota(owner=library.owner, library=library)
    return uploads.files_upload(connector=library, files=files, quota=quota)


@transaction.atomic
def library_file_remove(*, library: Connector, name: str) -> None:
    """Remove a file: its document and chunks leave the index now; a sync confirms it."""
    uploads.file_delete(connector=library, name=name)
    Document.objects.filter(connector=library, external_id=name).delete()


# --- when the owner leaves -----------------------------------------------------------------------

def _free_name(*, owner, name: str, previous_owner: str) -> str:
    """`name`, or "name (from alice)", "name (from alice) 2"… when `owner` already has that name."""
    taken = set(Connector.objects.filter(owner=owner).values_list("name", flat=True))
    candidate, n = name, 1
    while candidate in taken:
        suffix = f" (from {previous_owner})" + (f" {n}" if n > 1 else "")
        candidate, n = name[: NAME_MAX_CHARS - len(suffix)] + suffix, n + 1
    return candidate


@transaction.atomic
def library_hand_over(*, library: Connector, to) -> Connector:
    """Make `to` the library's owner, keeping its files, index and sharing: the readers it was
    shared with keep reading it; the previous owner's access goes with their ownership. Renamed
    "… (from <previous owner>)" if `to` already has a library of that name. (Libraries stay out
    of the audit log: the account's deletion records how many were handed over, and to whom.)"""
    previous = library.owner
    library.name = _free_name(owner=to, name=library.name, previous_owner=previous.get_username())
    library.owner = to
    library.save(update_fields=["owner", "name", "updated_at"])
    library.shared_users.remove(to)  # the new owner reads it as its owner now
    connector_acl_apply(connector=library)
    return library


@dataclass
class OwnerLeft:
    """What became of a leaving owner's libraries, by name, and the limits the successor is over
    now that they hold the libraries handed over (empty when none; see library_selectors)."""

    deleted: list[str] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)
    successor_over: list[LimitExcess] = field(default_factory=list)


@transaction.atomic
def libraries_owner_leave(*, owner, successor=None) -> OwnerLeft:
    """Before `owner`'s account is deleted: each library shared with someone goes to `successor`
    when one is named, whatever the successor's limits (they are reported, never enforced here:
    a handover drops nothing); every other library is deleted, its documents now and its folder
    once the transaction commits (nothing of it stays on disk)."""
    left = OwnerLeft()
    if successor is not None and successor.pk == owner.pk:
        raise ValueError("A successor must be someone else than the leaving owner.")  # callers check first
    for library in Connector.objects.filter(owner=owner, kind=LIBRARY_KIND).order_by("name"):
        if successor is not None and library_is_shared(library):
            left.handed_over.append(library_hand_over(library=library, to=successor).name)
        else:
            left.deleted.append(library.name)
            library_delete(library=library)
    if left.handed_over:
        left.successor_over = library_usage(owner=successor).over_limits()
    return left
