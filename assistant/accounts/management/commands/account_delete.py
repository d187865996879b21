"""Delete a user's account, saying what becomes of their libraries (assistant/accounts/departures.py).

    manage.py account_delete alice --libraries-to bob      bob takes over alice's shared libraries
    manage.py account_delete alice --delete-shared-libraries
    manage.py account_delete alice --libraries-to bob --dry-run   say what would happen, change nothing

A library alice shared with nobody is deleted with its files either way. A library shared with
colleagues is never deleted by default: name who takes it over, or say it goes too. It is handed
over whole even when that takes the successor over a library limit (LIBRARY_MAX_LIBRARIES,
LIBRARY_MAX_FILES, LIBRARY_MAX_BYTES): the output then says which limit and by how much, and the
successor can add nothing until back under it. --dry-run says all of that before anything is
deleted.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from assistant.accounts.departures import account_delete
from connectors.library_selectors import libraries_handover_preview, library_is_shared, limits_listed
from connectors.models import Connector
from connectors.upload_storage import LIBRARY_KIND


class Command(BaseCommand):
    help = "Delete a user's account; their shared libraries go to --libraries-to, or with --delete-shared-libraries."

    def add_arguments(self, parser):
        parser.add_argument("username")
        choice = parser.add_mutually_exclusive_group()
        choice.add_argument("--libraries-to", metavar="USERNAME",
                            help="Who takes over the libraries the user shared with others (sharing unchanged).")
        choice.add_argument("--delete-shared-libraries", action="store_true",
                            help="Delete the libraries the user shared with others as well.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Say what would be deleted and handed over, and the limits the successor would "
                                 "be over; change nothing.")

    def handle(self, *args, username: str, libraries_to: str | None = None, delete_shared_libraries=False,
               dry_run=False, **options):
        users = get_user_model().objects
        user = self._user(users, username)
        successor = self._user(users, libraries_to) if libraries_to else None
        if successor is not None and successor.pk == user.pk:
            raise CommandError("--libraries-to must name someone else than the user being deleted.")
        if successor is not None and not successor.is_active:
            raise CommandError(f"{libraries_to} is disabled: name an active user with --libraries-to.")
        shared = [lib.name for lib in Connector.objects.filter(owner=user, kind=LIBRARY_KIND) if library_is_shared(lib)]
        if shared and successor is None and not delete_shared_libraries:
            raise CommandError(
                f"{username} shares {len(shared)} librar{'y' if len(shared) == 1 else 'ies'} with colleagues "
                f"({', '.join(shared)}). Name who takes them over with --libraries-to USERNAME, "
                "or delete them too with --delete-shared-libraries."
            )
        if dry_run:
            self._preview(username, user, successor)
            return
        left = account_delete(user=user, successor=successor)
        self.stdout.write(
            f"Deleted {username}: {len(left.deleted)} librar{'y' if len(left.deleted) == 1 else 'ies'} deleted"
            + (f", handed to {successor.get_username()}: {', '.join(left.handed_over)}" if left.handed_over else "")
            + "."
        )
        if left.successor_over:
            name = successor.get_username()
            self.stdout.write(self.style.WARNING(
                f"Warning: {name} is now over their library limits: "
                + limits_listed(left.successor_over) + ".\n"
                f"Nothing was lost: the libraries were handed over whole. Until {name} is back under these limits, "
                f"they cannot create a library or add files (they are told why): they may remove files or libraries "
                f"on their Libraries page, or raise the settings named."
            ))

    def _preview(self, username: str, user, successor) -> None:
        preview = libraries_handover_preview(owners=[user], successor=successor)
        self.stdout.write(
            f"Dry run, nothing changed. Deleting {username} would delete {preview.deleted} "
            f"librar{'y' if preview.deleted == 1 else 'ies'}"
            + (f" and hand to {successor.get_username()}: {', '.join(preview.libraries)}" if preview.libraries else "")
            + "."
        )
        if preview.over:
            self.stdout.write(self.style.WARNING(
                f"Warning: {successor.get_username()} would be over their library limits: "
                + limits_listed(preview.over) + ". The libraries would still be handed over whole; until back "
                "under these limits they could not create a library or add files."
            ))

    @staticmethod
    def _user(users, username: str):
        try:
            return users.get(username=username)
        except users.model.DoesNotExist:
            raise CommandError(f"There is no user named {username!r}.") from None
