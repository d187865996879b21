"""System checks of the connectors app that read the database (run by `migrate`, `make run`'s
start-up, and `manage.py check --database default`)."""

from __future__ import annotations

from django.core.checks import Tags, Warning, register
from django.db import DatabaseError


@register(Tags.database)
def index_recipe_check(app_configs=None, databases=None, **kwargs):
    """The live index was built with another recipe than the configured one: say to rebuild it."""
    if not databases or "default" not in databases:
        return []
    from connectors.index_version import index_status

    try:
        status = index_status()
    except DatabaseError:  # not migrated yet
        return []
    if not status.out_of_date or status.building is not None:
        return []
    return [
        Warning(
            "The index is out of date: what is embedded (model, chunk size or chunk header) changed since it "
            "was built, so searches still read chunks made the old way.",
            hint="Rebuild it without downtime: manage.py index_rebuild (or 'Rebuild the index' on /connectors/index/).",
            id="connectors.W001",
        )
    ]
