"""Writes on connectors and their index. Views and tasks call these, nothing else."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from connectors import audit
from connectors.locks import lock_key, redis_client
from connectors.models import Chunk, Connector, Document, SyncRun
from connectors.queue import SYNC_CONNECTOR, enqueue
from connectors.secrets import SecretsError, decrypt_secrets, encrypt_secrets
from connectors.sources.base import DestinationRefused, Source, SourceError
from connectors.sources.registry import SOURCES, build_source
from connectors.upload_storage import FILE_KINDS, upload_dir_remove

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


def _setting(source, config: dict, name: str):
    """A setting as the source reads it (defaults filled in); the raw value when the rest is invalid."""
    try:
        value = getattr(source.Config.model_construct(**config), name, config.get(name))
    except Exception:  # noqa: BLE001 - compared only; validation reports the problem itself
        value = config.get(name)
    return str(value).strip().lower() if value is not None else ""


def _refuse_moved_secrets(kind: str, connector: Connector | None, config: dict, secrets: dict | None,
                          current: dict) -> None:
    """A stored secret goes only where it was given for: when the host, port or account changes,
    an empty secret field does not carry the stored one over (else a staff account could point the
    connector at its own server and receive the password at the next sync)."""
    source = SOURCES[kind]
    if connector is None or not current or not source.destination_fields:
        return
    moved = [f for f in source.destination_fields if _setting(source, config, f) != _setting(source, connector.config, f)]
    if not moved:
        return
    for name in source.secret_fields:
        if name in current and (secrets or {}).get(name, config.get(name)) in (None, ""):
            raise ConnectorInvalid({name: (
                f"The {', '.join(moved)} changed: type the {name} again. A stored {name} is only sent "
                "to the server it was given for."
            )})


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
    actor=None,
) -> Connector:
    """Create or update a connector after validating its settings against the source's schema.

    Secrets (passwords, tokens) are stored encrypted and never returned; leaving a secret
    empty on update keeps the stored one. The change is written to the audit log (with the
    names of changed secrets, never their values); an ACL change also as its own event.
    """

    if kind not in SOURCES:
        raise ConnectorInvalid({"kind": f"Unknown source kind {kind!r}."})
    if connector is not None and connector.kind != kind:
        raise ConnectorInvalid({"kind": "The kind of an existing connector cannot change; create a new one."})
    name = " ".join((name or "").split())
    if not name:
        raise ConnectorInvalid({"name": "Give the connector a name."})
    if Connector.objects.admin_managed().filter(name=name).exclude(pk=getattr(connector, "pk", None)).exists():
        raise ConnectorInvalid({"name": f"A connector named {name!r} already exists."})
    current = decrypt_secrets(connector.encrypted_secrets) if connector and connector.encrypted_secrets else {}
    _refuse_moved_secrets(kind, connector, config or {}, secrets, current)
    plain, secret_values = _split_secrets(kind, config or {}, secrets, current)
    try:
        # Where it points is checked too (database host, folder): the operator's policy, not
        # just the schema, and next to the field to fix. A name that does not resolve now is
        # not refused here: the test and every sync check again.
        build_source(kind, plain, secret_values).check_destination()
    except DestinationRefused as exc:
        raise ConnectorInvalid({exc.setting or "config": str(exc)}) from None
    except SourceError as exc:
        raise ConnectorInvalid({"config": str(exc)}) from None
    before = _connector_snapshot(connector) if connector is not None and not connector._state.adding else None
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
    _audit_save(actor=actor, connector=connector, before=before, secrets_before=current, secrets_after=secret_values)
    return connector


def _connector_snapshot(connector: Connector) -> dict:
    return {
        "name": connector.name,
        "config": dict(connector.config or {}),
        "is_public": connector.is_public,
        "groups": connector.acl_group_names(),
        "sync_interval": str(connector.sync_interval) if connector.sync_interval else None,
        "is_paused": connector.is_paused,
    }


def _audit_save(*, actor, connector: Connector, before: dict | None, secrets_before: dict, secrets_after: dict):

    after = _connector_snapshot(connector)
    changed_secrets = sorted(
        k for k in set(secrets_before) | set(secrets_after) if secrets_before.get(k) != secrets_after.get(k)
    )
    if before is None:
        details = {"kind": connector.kind, **after, "protected_fields_set": sorted(secrets_after)}
        audit.audit_record(actor=actor, action=audit.CONNECTOR_CREATED, target=connector, details=details)
        return
    changes = {}
    for field in ("name", "sync_interval", "is_paused"):
        if before[field] != after[field]:
            changes[field] = {"from": before[field], "to": after[field]}
    old_config, new_config = before["config"], after["config"]
    config_changes = {
        key: {"from": old_config.get(key), "to": new_config.get(key)}
        for key in sorted(set(old_config) | set(new_config))
        if old_config.get(key) != new_config.get(key)
    }
    if config_changes:
        changes["config"] = config_changes
    if changed_secrets:
        changes["protected_fields_changed"] = changed_secrets
    if changes:
        audit.audit_record(actor=actor, action=audit.CONNECTOR_CHANGED, target=connector, details=changes)
    if (before["is_public"], before["groups"]) != (after["is_public"], after["groups"]):
        audit.audit_record(
            actor=actor,
            action=audit.ACL_CHANGED,
            target=connector,
            details={
                "public": {"from": before["is_public"], "to": after["is_public"]},
                "groups": {"from": before["groups"], "to": after["groups"]},
                "added": sorted(set(after["groups"]) - set(before["groups"])),
                "removed": sorted(set(before["groups"]) - set(after["groups"])),
            },
        )


def connector_source(connector: Connector):
    """The connector's source with its decrypted secrets (raises SourceError when unusable)."""
    if not connector.encrypted_secrets:
        return build_source(connector.kind, connector.config)

    try:
        secrets = decrypt_secrets(connector.encrypted_secrets)
    except SecretsError as exc:
        raise SourceError(str(exc)) from None
    return build_source(connector.kind, connector.config, secrets)


@transaction.atomic
def connector_delete(*, connector: Connector, actor=None) -> None:
    """Delete a connector with its documents and runs; an upload connector's files go too."""

    for run in SyncRun.objects.filter(connector=connector, status__in=SyncRun.ACTIVE):
        sync_run_cancel(run=run)
    audit.audit_record(
        actor=actor,
        action=audit.CONNECTOR_DELETED,
        target=connector,
        details={"kind": connector.kind, "name": connector.name, "documents": connector.documents.count()},
    )
    connector_id, kind = connector.id, connector.kind
    connector.delete()
    if kind in FILE_KINDS:
        transaction.on_commit(lambda: upload_dir_remove(connector_id=connector_id))


def connector_pause(*, connector: Connector, paused: bool) -> Connector:
    connector.is_paused = paused
    connector.save(update_fields=["is_paused", "updated_at"])
    return connector


@transaction.atomic
def connector_reindex(*, connector: Connector, actor=None) -> SyncRun:
    """Re-embed every document from its stored text (after changing the embedding model).

    Nothing is fetched again; old chunks keep answering until each document's new ones replace them.
    """
    run = connector_sync_start(connector=connector, trigger=SyncRun.Trigger.REINDEX, actor=actor)
    return run


@transaction.atomic
def connector_sync_start(*, connector: Connector, trigger: str = SyncRun.Trigger.MANUAL, actor=None) -> SyncRun:
    """Queue a sync of the connector, or return the one already queued or running.

    A run whose worker died (no heartbeat, lock gone) is failed first, so a new one can start.
    A sync a person started (`actor` given) is written to the audit log; scheduled ones are not.
    """

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
    if actor is not None:

        action = audit.REINDEX_STARTED if trigger == SyncRun.Trigger.REINDEX else audit.SYNC_STARTED
        audit.audit_record(
            actor=actor, action=action, target=connector, details={"run": str(run_id), "trigger": trigger}
        )
    transaction.on_commit(lambda: enqueue(SYNC_CONNECTOR, str(run_id)))
    return run


@transaction.atomic
def sync_run_cancel(*, run: SyncRun, actor=None) -> SyncRun:
    """Ask a queued or running sync to stop; the worker stops at its next checkpoint."""
    updated = SyncRun.objects.filter(id=run.id, status__in=SyncRun.ACTIVE).update(
        status=SyncRun.Status.CANCELLED, finished_at=timezone.now()
    )
    if updated:
        Connector.objects.filter(id=run.connector_id).update(status=Connector.Status.IDLE)
        if actor is not None:

            audit.audit_record(
                actor=actor, action=audit.SYNC_CANCELLED, target=run.connector, details={"run": str(run.id)}
            )
    run.refresh_from_db()
    return run


def connector_acl_source(connector: Connector):
    """The connector's source when its settings map items to groups (folder mapping), else None."""

    source_class = SOURCES.get(connector.kind)
    if source_class is None or source_class.acl_rule is Source.acl_rule:
        return None  # this kind has no such settings: nothing to build or decrypt
    try:
        source = connector_source(connector)
    except SourceError:
        return None
    return source if source.has_acl_rules else None


@transaction.atomic
def connector_acl_apply(*, connector: Connector) -> int:
    """Copy the connector's ACL onto the documents and chunks that inherit it.

    The ACL of a document is the connector's (public flag and groups) unless a setting of
    the connector maps it elsewhere (a folder's sub-folder to groups) or the item brought its
    own (a groups column: left alone). Takes effect on the next query; nothing is re-embedded.
    Returns how many documents changed.
    """
    groups = connector.acl_group_names()
    inherit = Document.objects.filter(connector=connector, acl_from_source=False)
    source = connector_acl_source(connector)
    if source is None:
        stale = inherit.filter(~Q(acl_public=connector.is_public) | ~Q(acl_groups=groups))
        ids = list(stale.values_list("id", flat=True))
        if not ids:
            return 0
        Document.objects.filter(id__in=ids).update(acl_public=connector.is_public, acl_groups=groups)
        Chunk.objects.filter(document_id__in=ids).update(acl_public=connector.is_public, acl_groups=groups)
        return len(ids)
    # Per document: its rule's ACL, else the connector's; grouped so each distinct ACL is one update.
    targets: dict[tuple[bool, tuple[str, ...]], list] = {}
    for doc_id, external_id, public, current in inherit.values_list("id", "external_id", "acl_public", "acl_groups"):
        rule = source.acl_rule(external_id)
        wanted = (rule.public, tuple(sorted(rule.groups))) if rule else (connector.is_public, tuple(groups))
        if (public, tuple(current)) != wanted:
            targets.setdefault(wanted, []).append(doc_id)
    changed = 0
    for (public, wanted_groups), ids in targets.items():
        for start in range(0, len(ids), 1000):
            batch = ids[start : start + 1000]
            Document.objects.filter(id__in=batch).update(acl_public=public, acl_groups=list(wanted_groups))
            Chunk.objects.filter(document_id__in=batch).update(acl_public=public, acl_groups=list(wanted_groups))
        changed += len(ids)
    return changed


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


    if run.status != SyncRun.Status.RUNNING or run.heartbeat_at is None:
        return False
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.SYNC_LOCK_SECONDS)
    return run.heartbeat_at < cutoff and not redis_client().exists(lock_key(run.connector_id))


def sync_runs_stale_fail(*, run_ids=None, index_stage: bool = True) -> int:
    """Fail runs whose worker died, so the next run can start (and complete the work).

    `index_stage=False` leaves runs whose source was read completely: the beat resumes those
    (connectors.sync_recovery) instead of failing them.
    """
    runs = SyncRun.objects.filter(status=SyncRun.Status.RUNNING)
    if run_ids is not None:
        runs = runs.filter(id__in=run_ids)
    if not index_stage:
        runs = runs.filter(fetch_done=False)
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
