"""Prepare a fresh installation for a first look: an admin account and a sample connector.

Idempotent, so `make run` calls it on every start: it creates only what is missing
and queues the first sync of the sample folder only until one has succeeded.
"""

from __future__ import annotations

import os
import secrets
import string

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from connectors import services
from connectors.models import Connector, SyncRun

SAMPLE_CONNECTOR_NAME = "Company handbook"
PASSWORD_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 16) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


class Command(BaseCommand):
    help = "Create the demo admin account and the sample 'Company handbook' connector (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--no-sync", action="store_true", help="Do not queue a sync of the sample connector.")

    def handle(self, *args, no_sync: bool = False, **options):
        self._ensure_admin()
        connector = self._ensure_connector()
        if not no_sync:
            self._ensure_first_sync(connector)

    # --- admin ------------------------------------------------------------------------------
    def _ensure_admin(self) -> None:
        User = get_user_model()
        username = os.environ.get("DEMO_ADMIN_USERNAME") or "admin"
        email = os.environ.get("DEMO_ADMIN_EMAIL") or ""
        if User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists():
            self.stdout.write(f"Admin user '{username}' exists.")
            return
        given = os.environ.get("DEMO_ADMIN_PASSWORD") or ""
        password = given or generate_password()
        with transaction.atomic():
            User._default_manager.create_superuser(username=username, email=email, password=password)
        if given:
            # A password the operator chose is theirs: never echo it.
            self.stdout.write(f"Admin login: {username} / (the password in DEMO_ADMIN_PASSWORD)")
        else:
            # Shown once, here only; it is not stored anywhere else in clear.
            self.stdout.write(f"Admin login: {username} / {password}")

    # --- sample connector ----------------------------------------------------------------------
    def _ensure_connector(self) -> Connector:
        path = str((settings.BASE_DIR / "samples" / "handbook").resolve())
        connector, created = Connector.objects.get_or_create(
            name=SAMPLE_CONNECTOR_NAME,
            defaults={"kind": "folder", "config": {"path": path}, "is_public": True},
        )
        if created:
            self.stdout.write(f"Created connector '{connector.name}' (folder {path}).")
        return connector

    def _ensure_first_sync(self, connector: Connector) -> None:
        if connector.last_success_at is not None:
            return  # indexed before; beat and the admin take it from here
        if connector.is_paused:
            self.stdout.write(f"Connector '{connector.name}' is paused; not syncing it.")
            return
        if SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE).exists():
            self.stdout.write(f"A sync of '{connector.name}' is already queued or running.")
            return
        services.connector_sync_start(connector=connector, trigger=SyncRun.Trigger.MANUAL)
        self.stdout.write(f"Queued the first sync of '{connector.name}'; the worker indexes it in the background.")
