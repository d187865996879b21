"""`manage.py index_languages`: detect each document's language and rewrite the full-text vectors
of those whose language changed (after upgrading to language detection, or a change of
RAG_DETECT_LANGUAGES). Embeddings are not touched; searches go on meanwhile."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from connectors.language_refresh import documents_language_refresh


class Command(BaseCommand):
    help = "Detect documents' languages and rewrite the full-text vectors of those that changed (no re-embedding)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connector", help="Only this connector's documents (its id).")
        parser.add_argument("--all", action="store_true", dest="everything",
                            help="Rewrite every document's vectors, not only those whose language changed.")

    def handle(self, *args, connector=None, everything=False, **options) -> None:
        report = documents_language_refresh(
            connector_id=connector, everything=everything, log=lambda line: self.stderr.write(line)
        )
        self.stdout.write(json.dumps(report, indent=2))
