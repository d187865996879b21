"""Writes on connectors and their index. Views and tasks call these, nothing else."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.sources.base import SourceError
from connectors.sources.registry import SOURCES, build_source

logger = logging.getLogger(__name__)


class ConnectorInvalid(ValueError):
    """Connector settings an admin must fix; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _split_secrets(kind: str, config: dict, secrets: dict | None, current: dict) -> tuple[dict, dict]:
    """Move secret fields out of `config`; a secret left empty keeps the stored one."""
    secret_fields = SOURCES[kind].secret_fields
    plain = {k: v for k, v in config.items() if k not in secret_fields}
    merged = dict(current)
    for name in secret_fields:
        value = (secrets or {}).get(name, config.get(name))
        if value not in (None, ""):
            merged[name] = value
    return plain, {k: v for k, v in merged.items() if k in secret_fields}


@transaction.atomic
def connector_save(
    *,
    connector: Connector | None = None,
    name: str,
    kind: str,
    config: dict,
    secrets: dict | None = None,
    is_public: bool = False,
    groups=(),
    sync_interval=None,
    is_paused: bool = False,
) -> Connector:
    """Create or update a connector after validating its settings against the source's schema.

    Secrets (passwords, tokens) are stored encrypted and never returned; leaving a secret
    empty on update keeps the stored one.
    """
    from connectors.secrets import decrypt_secrets, encrypt_secrets

    if kind not in SOURCES:
        raise ConnectorInvalid({"kind": f"Unknown source kind {kind!r}."})
    if connector is not None and connector.kind != kind:
        raise ConnectorInvalid({"kind": "The kind of an existing connector cannot change; create a new one."})
    name = " ".join((name or "").split())
    if not name:
        raise ConnectorInvalid({"name": "Give the connector a name."})
    if Connector.objects.filter(name=name).exclude(pk=getattr(connector, "pk", None)).exists():
        raise ConnectorInvalid({"name": f"A connector named {name!r} already exists."})
    current = decrypt_secrets(connector.encrypted_secrets) if connector and connector.encrypted_secrets else {}
    plain, secret_values = _split_secrets(kind, config or {}, secrets, current)
    try:
        build_source(kind, plain, secret_values)
    except SourceError as exc:
        raise ConnectorInvalid({"config": str(exc)}) from None
    connector = connector or Connector(kind=kind)
    connector.name = name
    connector.config = plain
    connector.encrypted_secrets = encrypt_secrets(secret_values) if secret_values else ""
    connector.is_public = is_public
    connector.sync_interval = sync_interval
    connector.is_paused = is_paused
    connector.save()
    connector.groups.set(groups)
    connector_acl_apply(connector=connector)
    return connector


def connector_source(connector: Connector):
    """The connector's source with its decrypted secrets (raises SourceError when unusable)."""
    if not connector.encrypted_secrets:
        return build_source(connector.kind, connector.config)
    from connectors.secrets import SecretsError, decrypt_secrets

    try:
        secrets = decrypt_secrets(connector.encrypted_secrets)
    except SecretsError as exc:
        raise SourceError(str(exc)) from None
    return build_source(connector.kind, connector.config, secrets)


@transaction.atomic
def connector_delete(*, connector: Connector) -> None:
    """Delete a connector with its documents and runs; an upload connector's files go too."""
    from connectors import uploads

    for run in SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE):
        sync_run_cancel(run=run)
    connector_id, kind = connector.id, connector.kind
    connector.delete()
    if kind == uploads.UPLOAD_KIND:
        transaction.on_commit(lambda: uploads.upload_dir_remove(connector_id=connector_id))


def connector_pause(*, connector: Connector, paused: bool) -> Connector:
    connector.is_paused = paused
    connector.save(update_fields=["is_paused", "updated_at"])
    return connector


@transaction.atomic
def connector_reindex(*, connector: Connector) -> SyncRun:
    """Re-embed every document from its stored text (after changing the embedding model).

    Nothing is fetched again; old chunks keep answering until each document's new ones replace them.
    """
    run = connector_sync_start(connector=connector, trigger=SyncRun.Trigger.REINDEX)
    return run


@transaction.atomic
def connector_sync_start(*, connector: Connector, trigger: str = SyncRun.Trigger.MANUAL) -> SyncRun:
    """Queue a sync of the connector, or return the one already queued or running.

    A run whose worker died (no heartbeat, lock gone) is failed first, so a new one can start.
    """
    from connectors.tasks import sync_connector

    active = SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE).first()
    if active and sync_run_is_stale(active):
        sync_runs_stale_fail(run_ids=[active.id])
        active = None
    if active:
        return active
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(connector=connector, trigger=trigger)
    except IntegrityError:  # another request queued one at the same instant
        return SyncRun.objects.get(connector=connector, status__in=SyncRun.ACTIVE)
    run_id = run.id
    transaction.on_commit(lambda: sync_connector.delay(str(run_id)))
    return run


@transaction.atomic
def sync_run_cancel(*, run: SyncRun) -> SyncRun:
    """Ask a queued or running sync to stop; the worker stops at its next checkpoint."""
    updated = SyncRun.objects.filter(id=run.id, status__in=SyncRun.ACTIVE).update(
        status=SyncRun.Status.CANCELLED, finished_at=timezone.now()
    )
    if updated:
        Connector.objects.filter(id=run.connector_id).update(status=Connector.Status.IDLE)
    run.refresh_from_db()
    return run


@transaction.atomic
def connector_acl_apply(*, connector: Connector) -> int:
    """Copy the connector's ACL onto the documents and chunks that inherit it.

    Takes effect on the next query; nothing is re-embedded.
    """
    groups = connector.acl_group_names()
    stale = Document.objects.filter(connector=connector, acl_from_source=False).filter(
        ~Q(acl_public=connector.is_public) | ~Q(acl_groups=groups)
    )
    ids = list(stale.values_list("id", flat=True))
    if not ids:
        return 0
    Document.objects.filter(id__in=ids).update(acl_public=connector.is_public, acl_groups=groups)
    Chunk.objects.filter(document_id__in=ids).update(acl_public=connector.is_public, acl_groups=groups)
    return len(ids)


def connectors_due_sync_start() -> list[SyncRun]:
    """Queue a scheduled sync for every active connector whose interval has passed."""
    now = timezone.now()
    started = []
    candidates = Connector.objects.filter(is_paused=False, sync_interval__isnull=False).exclude(
        runs__status__in=SyncRun.ACTIVE
    )
    for connector in candidates:
        if connector.last_sync_at is None or connector.last_sync_at + connector.sync_interval <= now:
            started.append(connector_sync_start(connector=connector, trigger=SyncRun.Trigger.SCHEDULE))
    return started


def sync_run_is_stale(run: SyncRun) -> bool:
    """A running sync whose worker stopped: no heartbeat for a lock's lifetime, and the lock gone."""
    from django.conf import settings

    from connectors.sync import lock_key, redis_client

    if run.status != SyncRun.Status.RUNNING or run.heartbeat_at is None:
        return False
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS)
    return run.heartbeat_at < cutoff and not redis_client().exists(lock_key(run.connector_id))


def sync_runs_stale_fail(*, run_ids=None) -> int:
    """Fail runs whose worker died, so the next run can start (and complete the work)."""
    runs = SyncRun.objects.filter(status=SyncRun.Status.RUNNING)
    if run_ids is not None:
        runs = runs.filter(id__in=run_ids)
    failed = 0
    for run in runs:
        if not sync_run_is_stale(run):
            continue
        with transaction.atomic():
            updated = SyncRun.objects.filter(id=run.id, status=SyncRun.Status.RUNNING).update(
                status=SyncRun.Status.FAILED,
                finished_at=timezone.now(),
                error="The worker stopped during this sync; the next sync resumes where it left off.",
            )
            if updated:
                Connector.objects.filter(id=run.connector_id).update(status=Connector.Status.IDLE)
                failed += 1
    return failed
