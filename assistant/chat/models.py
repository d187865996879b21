"""Conversations and their messages. Each user sees only their own."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from pgvector.django import VectorField

from assistant.agent.registry import default_tool_names


class Conversation(models.Model):
    DEFAULT_TITLE = "New conversation"

    class TitleSource(models.TextChoices):
        DEFAULT = "default", "Default"
        QUESTION = "question", "From the first question"  # provisional, replaced by the model's title
        MODEL = "model", "Written by the model"
        USER = "user", "Renamed by the user"  # never overwritten

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, default=DEFAULT_TITLE)
    assistant = models.ForeignKey(
        "chat.Assistant", on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations",
        help_text="Who answers in this conversation; empty means the default assistant.",
    )
    title_source = models.CharField(max_length=10, choices=TitleSource.choices, default=TitleSource.DEFAULT)
    libraries = models.ManyToManyField(
        "connectors.Connector", blank=True, related_name="pinned_in",
        help_text="Libraries this conversation searches, and only these (none: every source the user may see).",
    )
    pinned_at = models.DateTimeField(null=True, blank=True, help_text="Pinned conversations are listed first.")
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Deleted by its user: hidden, restorable for a while, then purged."
    )
    active_leaf = models.ForeignKey(
        "chat.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Last message of the branch shown (regenerated answers and edited questions branch off).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["user", "-updated_at"], name="conversation_user_recent")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("chat:conversation", args=[self.id])


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children",
        help_text="The message this one follows: an answer's question, a question's previous answer.",
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    content = models.TextField(blank=True)
    rendered_html = models.TextField(blank=True, help_text="Sanitised HTML of the answer with citation chips.")
    citations = models.JSONField(default=list, blank=True)
    #: The agent's tool calls, in order: {"id", "tool", "arguments", "status", "label", "summary",
    #: "sources", "error", "duration_ms"} (see assistant/agent/steps.py). Empty without tools.
    steps = models.JSONField(default=list, blank=True)
    #: Every passage the answer was given (retrieved or read), as {"n", "title", "url",
    #: "connector", "document_id", "kind", "passage"}; listed under the answer, cited ones first.
    sources = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    error_retryable = models.BooleanField(
        default=True, help_text="Whether Retry is offered for the error (not for a question too long for the model)."
    )
    model = models.CharField(max_length=200, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class Attachment(models.Model):
    """A file a user attached to a conversation: parsed text, private to that conversation.

    Never part of the shared index; its chunks carry their own vectors for retrieval
    within the conversation when the whole text does not fit the model's window.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments",
        help_text="The question it was sent with; empty while it waits in the composer.",
    )
    name = models.CharField(max_length=255)
    media_type = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("chat:attachment", args=[self.id])


class AttachmentChunk(models.Model):
    attachment = models.ForeignKey(Attachment, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    start_char = models.PositiveIntegerField(help_text="Offset of the chunk in the attachment's text.")
    end_char = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS)

    class Meta:
        ordering = ["attachment", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["attachment", "ordinal"], name="unique_attachment_chunk_ordinal")
        ]

    def __str__(self) -> str:
        return f"{self.attachment_id}#{self.ordinal}"


def default_assistant_tools() -> list[str]:
    """A new assistant's tools: those the registry turns on by default."""
    return default_tool_names()


class Assistant(models.Model):
    """What answers: instructions, the connectors it may search and the model's parameters.

    Defined by admins; each conversation picks one (none = the default one).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True, help_text="One line shown to users in the picker.")
    instructions = models.TextField(
        blank=True, help_text="Added to the system prompt, e.g. the tone, the audience, what to focus on."
    )
    connectors = models.ManyToManyField(
        "connectors.Connector", blank=True, related_name="assistants",
        help_text="The data sources it searches. None selected: every source the user may see.",
    )
    groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="assistants",
        help_text="Who may pick it. None selected: everyone. The default assistant is open to everyone.",
    )
    temperature = models.FloatField(
        null=True, blank=True, help_text="0 to 2; empty: the server default (LLM_TEMPERATURE)."
    )
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Longest answer in tokens; empty: LLM_MAX_TOKENS."
    )
    model_name = models.CharField(
        max_length=200, blank=True, help_text="A model the model server offers; empty: LLM_MODEL."
    )
    tools = models.JSONField(
        default=default_assistant_tools, blank=True,
        help_text="The tools the model may call in its answers (names in the tool registry), when the model "
        "server supports tools (LLM_TOOLS).",
    )
    is_default = models.BooleanField(default=False, help_text="Answers new conversations. Exactly one is the default.")
    is_active = models.BooleanField(default=True, help_text="Inactive assistants are hidden from the picker.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_assistant"
            ),
            models.CheckConstraint(
                condition=models.Q(temperature__isnull=True) | models.Q(temperature__gte=0, temperature__lte=2),
                name="assistant_temperature_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Feedback(models.Model):
    """A user's rating of one answer, with an optional comment; one per user and answer."""

    class Rating(models.TextChoices):
        UP = "up", "Helpful"
        DOWN = "down", "Not helpful"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback")
    rating = models.CharField(max_length=10, choices=Rating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        verbose_name_plural = "feedback"
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="one_feedback_per_user_message")]
        indexes = [models.Index(fields=["rating", "-updated_at"], name="feedback_rating_recent")]

    def __str__(self) -> str:
        return f"{self.rating} on {self.message_id}"


class FeedbackExport(models.Model):
    """Who exported feedback, when, with which filters (see chat.feedback.feedback_export_record)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    username = models.CharField(max_length=150)
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} exported {self.row_count} rows"


class MemoryPreference(models.Model):
    """Whether the assistant may remember things for this user (off until the user turns it on)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memory_preference")
    enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"memory {'on' if self.enabled else 'off'} for {self.user_id}"


class Memory(models.Model):
    """A fact or preference one user asked the assistant to remember; never shown to anyone else."""

    class Origin(models.TextChoices):
        COMMAND = "command", "Said in the chat"
        TOOL = "tool", "Saved by the model"
        MANUAL = "manual", "Added on the memories page"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories")
    text = models.CharField(max_length=500)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.COMMAND)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "memories"
        indexes = [models.Index(fields=["user", "created_at"], name="memory_user_created")]

    def __str__(self) -> str:
        return self.text[:60]


class ConversationShare(models.Model):
    """A conversation shared read-only with one colleague or with one group its owner belongs to.

    Live, not a snapshot: viewers see the conversation's shown branch as it is when they open it
    (later turns included), every citation re-checked against the viewer's own access
    (assistant/chat/sharing.py). Deleting the row revokes it at once. A group share counts only
    while the owner still belongs to the group.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="conversations_shared",
        help_text="The colleague it is shared with (or empty for a group share).",
    )
    group = models.ForeignKey(
        "auth.Group", on_delete=models.CASCADE, null=True, blank=True, related_name="conversations_shared",
        help_text="The group it is shared with (or empty for a colleague share).",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, group__isnull=True)
                           | models.Q(user__isnull=True, group__isnull=False)),
                name="share_with_user_xor_group",
            ),
            models.UniqueConstraint(fields=["conversation", "user"], condition=models.Q(user__isnull=False),
                                    name="one_share_per_conversation_user"),
            models.UniqueConstraint(fields=["conversation", "group"], condition=models.Q(group__isnull=False),
                                    name="one_share_per_conversation_group"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} shared with {self.user_id or self.group_id}"
