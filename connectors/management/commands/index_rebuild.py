"""`manage.py index_rebuild`: rebuild the whole index beside the live one, then switch.

Start (or resume) a rebuild with the configured recipe; the index workers do the work and
searches keep using the live version until the new one is complete. `--status` only reports.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from connectors.index_version import index_status
from connectors.rebuild import index_rebuild_start


def _version(version) -> dict | None:
    if version is None:
        return None
    return {
        "number": version.number,
        "state": version.state,
        "recipe": version.recipe,
        "documents_done": version.documents_done,
        "documents_total": version.documents_total,
        "progress_percent": version.progress_percent,
        "live_at": version.live_at.isoformat() if version.live_at else None,
    }


class Command(BaseCommand):
    help = "Rebuild the search index beside the live one (the workers do it); --status shows where it stands."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", action="store_true", help="Only show the live and building versions.")

    def handle(self, *args, status: bool = False, **options) -> None:
        if not status:
            version, created = index_rebuild_start()
            verb = "Started" if created else "Resumed"
            self.stdout.write(
                f"{verb} rebuilding the index as version {version.number}; the index workers build it and "
                "searches switch to it when it is complete. Follow it with --status or on /connectors/index/."
            )
        current = index_status()
        report = {
            "live": _version(current.live),
            "building": _version(current.building),
            "configured_recipe": current.configured_recipe,
            "out_of_date": current.out_of_date,
        }
        self.stdout.write(json.dumps(report, indent=2))
