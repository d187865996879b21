"""The index: connectors, their sync runs, and the documents and chunks they feed.

Access control is stored on every Document and copied onto its Chunks, so that
retrieval filters inside the same SQL query that ranks the chunks.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Cast
from pgvector.django import HalfVectorField, HnswIndex, VectorField

from connectors.principals import is_user_principal, user_principal


class ConnectorQuerySet(models.QuerySet):
    def admin_managed(self) -> ConnectorQuerySet:
        """Admins' connectors: what the connectors pages and the admin show (never a user's library)."""
        return self.filter(owner__isnull=True)


class Connector(models.Model):
    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        SYNCING = "syncing", "Syncing"
        ERROR = "error", "Error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=40, help_text="Which source this connector reads, e.g. folder.")
    #: Set for a library (kind "library"): a user's own set of uploaded files. Admins' connectors
    #: have none; the connectors pages and the admin never show a library.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="libraries",
        editable=False,
    )
    shared_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="libraries_shared", editable=False,
        help_text="Colleagues a library is shared with by name (its ACL carries their user principals).",
    )
    description = models.CharField(
        max_length=500, blank=True,
        help_text="What its documents are about, e.g. 'HR policies since 2019'. Shown to the assistant's model "
        "(list_sources) and to MCP clients, to choose where to search.",
    )
    config = models.JSONField(default=dict, blank=True, help_text="Settings of the source kind, as JSON.")
    is_public = models.BooleanField(
        default=False, help_text="Every signed-in user may see its documents. Otherwise only the groups below."
    )
    groups = models.ManyToManyField(Group, blank=True, related_name="connectors")
    sync_interval = models.DurationField(
        null=True, blank=True, help_text="Sync automatically this often (e.g. 01:00:00). Empty: only on demand."
    )
    is_paused = models.BooleanField(default=False, help_text="A paused connector is not synced on schedule.")
    encrypted_secrets = models.TextField(
        blank=True, editable=False, help_text="Passwords and tokens of the source, encrypted (connectors.secrets)."
    )
    sync_state = models.JSONField(
        default=dict, blank=True, editable=False, help_text="The source's checkpoint after the last successful sync."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IDLE)
    last_error = models.TextField(blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectorQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            # Admins' connectors are named uniquely; a library only among its owner's libraries.
            models.UniqueConstraint(fields=["name"], condition=models.Q(owner__isnull=True), name="unique_connector_name"),
            models.UniqueConstraint(
                fields=["owner", "name"], condition=models.Q(owner__isnull=False), name="unique_library_name_per_owner"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_library(self) -> bool:
        return self.owner_id is not None

    def acl_group_names(self) -> list[str]:
        """The principals its documents inherit: its groups' names; for a library also its owner
        and the colleagues it is shared with by name (connectors.principals)."""
        names = [name for name in self.groups.values_list("name", flat=True) if not is_user_principal(name)]
        if self.owner_id is not None:
            users = [self.owner_id, *self.shared_users.values_list("id", flat=True)]
            names += [user_principal(user_id) for user_id in users]
        return sorted(set(names))


class SyncRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULE = "schedule", "Schedule"
        REINDEX = "reindex", "Re-index"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    indexed = models.PositiveIntegerField(default=0, help_text="Documents embedded and stored by the index queue.")
    to_index = models.PositiveIntegerField(default=0, help_text="Documents handed to the index queue.")
    fetch_done = models.BooleanField(default=False, help_text="The source has been read completely.")
    total = models.PositiveIntegerField(null=True, blank=True, help_text="Items in the source, when known.")
    error = models.TextField(blank=True)
    notes = models.TextField(blank=True, help_text="Warnings, e.g. why deletions were skipped.")
    created_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one queued or running sync per connector.
            models.UniqueConstraint(
                fields=["connector"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_sync_per_connector",
            )
        ]

    @property
    def progress_percent(self) -> int | None:
        """Reading and indexing weigh half each; None while the source's size is unknown."""
        if self.status not in self.ACTIVE:
            return 100 if self.status == self.Status.SUCCEEDED else None
        read = 1.0 if self.fetch_done else (self.seen / self.total if self.total else None)
        if read is None:
            return None
        indexed = self.indexed / self.to_index if self.to_index else (1.0 if self.fetch_done else 0.0)
        return min(100, round(50 * min(read, 1.0) + 50 * min(indexed, 1.0)))

    def __str__(self) -> str:
        return f"{self.connector} {self.status} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class SyncFailure(models.Model):
    """One source item that could not be indexed in a run, with the reason."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="failures")
    external_id = models.CharField(max_length=1024)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.reason}"


class Document(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=1024, help_text="The item's identity in its source, e.g. a path.")
    title = models.CharField(max_length=500)
    location = models.CharField(max_length=2048, blank=True, help_text="Where the item lives: path, URL, table/row.")
    url = models.URLField(max_length=2048, blank=True, help_text="A link that opens the original, if any.")
    media_type = models.CharField(max_length=100, blank=True)
    text = models.TextField()
    headings = models.JSONField(
        default=list, blank=True,
        help_text="The text's headings as [offset, level, text] (HTML, Markdown, PDF bookmarks, Word styles).",
    )
    content_hash = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=40, default="english", help_text="PostgreSQL text search configuration.")
    acl_public = models.BooleanField(default=False)
    acl_groups = ArrayField(models.CharField(max_length=150), default=list, blank=True)
    acl_from_source = models.BooleanField(
        default=False, help_text="The ACL came with the item (e.g. a groups column), not from the connector."
    )
    source_modified_at = models.DateTimeField(null=True, blank=True)

    class IndexStatus(models.TextChoices):
        PENDING = "pending", "Waiting to be embedded"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"

    index_status = models.CharField(max_length=20, choices=IndexStatus.choices, default=IndexStatus.PENDING)
    index_error = models.TextField(blank=True)
    pending_run = models.ForeignKey(
        SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The run whose index tasks will embed this document.",
    )
    embedding_model = models.CharField(max_length=200, blank=True, help_text="Model that embedded the chunks.")
    indexed_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["connector", "external_id"], name="unique_document_per_source")]
        indexes = [models.Index(fields=["pending_run", "index_status"], name="document_pending_run")]

    def __str__(self) -> str:
        return self.title


class IndexVersion(models.Model):
    """One build of the whole index with one recipe (what is embedded, and how).

    Exactly one version is live: every search reads it, and only it. A rebuild fills a new
    version beside it ("building"), then one transaction makes it live and retires the old
    one, whose chunks are deleted afterwards (connectors/rebuild.py).
    """

    class State(models.TextChoices):
        BUILDING = "building", "Building"
        LIVE = "live", "Live"
        RETIRED = "retired", "Retired"

    number = models.PositiveIntegerField(unique=True, help_text="Chunk.index_version of its chunks.")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the recipe (connectors.index_version).")
    recipe = models.JSONField(default=dict, help_text="Embedding model, dimensions, chunk size, embedded text format.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.BUILDING)
    documents_total = models.PositiveIntegerField(default=0, help_text="Documents to embed into it.")
    documents_done = models.PositiveIntegerField(default=0, help_text="Documents embedded into it.")
    chunks_done = models.PositiveIntegerField(default=0, help_text="Chunks stored by the rebuild.")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    live_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True, help_text="When a retired version's chunks were deleted.")

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="live"), name="one_live_index_version"),
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="building"), name="one_building_index_version"
            ),
        ]

    def __str__(self) -> str:
        return f"index v{self.number} ({self.state})"

    @property
    def progress_percent(self) -> int:
        if self.state != self.State.BUILDING:
            return 100
        if not self.documents_total:
            return 0
        return min(99, int(100 * self.documents_done / self.documents_total))


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    start_char = models.PositiveIntegerField(help_text="Offset of the chunk in the document's text.")
    end_char = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    section = models.TextField(
        blank=True, default="", help_text="The headings above the chunk, outermost first, joined by ' › '."
    )
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS)
    search_vector = SearchVectorField(null=True)
    acl_public = models.BooleanField(default=False)
    acl_groups = ArrayField(models.CharField(max_length=150), default=list, blank=True)
    # IndexVersion.number (not a foreign key: a search filters on the number it read once, and
    # bulk loads may leave it to the database default, the first version).
    index_version = models.PositiveIntegerField(default=1, db_default=1)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "ordinal", "index_version"], name="unique_chunk_ordinal_version"
            )
        ]
        indexes = [
            # A version's chunks (the purge) and a document's chunks in a version (a rebuild's
            # "missing" check, one probe per document whatever the planner thinks of the version).
            models.Index(fields=["index_version", "document"], name="chunk_version_document"),
            # On the vectors cast to half precision: half the size of a float32 index (it must
            # fit in memory: 1M chunks of 384 dimensions take 1.1 GB, not about 1.9), the same recall.
            # The search orders by the same expression (connectors.search.dense). Migration
            # 0008 keeps the float32 index where pgvector is older than 0.7 (no halfvec).
            HnswIndex(
                OpClass(Cast("embedding", HalfVectorField(dimensions=settings.EMBEDDING_DIMENSIONS)),
                        name="halfvec_cosine_ops"),
                name="chunk_embedding_halfvec_hnsw",
                m=16,
                ef_construction=64,
            ),
            GinIndex(name="chunk_search_vector_gin", fields=["search_vector"]),
            GinIndex(name="chunk_acl_groups_gin", fields=["acl_groups"]),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"


class AuditEvent(models.Model):
    """One admin action (connector created, ACL changed, export...), kept for review.

    Written only through connectors.audit.audit_record, which strips secrets from `details`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="The actor's username, kept if deleted.")
    action = models.CharField(max_length=80, db_index=True, help_text="e.g. connector.created, acl.changed")
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=200, blank=True, db_index=True)
    target_label = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.target_label}"
