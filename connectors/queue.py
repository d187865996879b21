"""Queueing the connectors' Celery tasks by name.

The task module imports the engine and the services (a task is a thin shell around them); they
queue its tasks through the app's registry, looked up when a task is queued, so nothing imports
the task module back.
"""

from __future__ import annotations

from celery import current_app

SYNC_CONNECTOR = "connectors.tasks.sync_connector"
INDEX_DOCUMENTS = "connectors.tasks.index_documents"
INDEX_REBUILD_PLAN = "connectors.tasks.index_rebuild_plan"
INDEX_REBUILD_BATCH = "connectors.tasks.index_rebuild_batch"
INDEX_VERSION_PURGE = "connectors.tasks.index_version_purge"


def enqueue(task_name: str, *args) -> None:
    if task_name not in current_app.tasks:
        # Outside a worker nothing has imported the task modules yet: Celery's autodiscovery does.
        current_app.loader.import_default_modules()
    current_app.tasks[task_name].delay(*args)
