"""Evaluation cases (questions with what a good answer holds), runs of them and per-case results."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _, pgettext_lazy


class EvaluationCase(models.Model):
    """A question the assistant must keep answering well, made from real use or imported.

    `expected_sources`: [{"kind": "document", "connector": name, "external_id", "title"} or
    {"kind": "query", "connector": name, "sql"}]. A case is shown and run only for readers who may
    read every one of its sources that exists in the index (assistant/evaluation/access.py)."""

    class Origin(models.TextChoices):
        FEEDBACK = "feedback", _("From feedback")
        MESSAGE = "message", _("From a message")
        IMPORT = "import", _("Imported")
        DATASET = "dataset", _("From a public data set")
        MANUAL = "manual", _("Written by hand")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    question = models.TextField()
    history = models.JSONField(default=list, blank=True, help_text='The turns before it: [{"role", "content"}].')
    assistant = models.ForeignKey(
        "chat.Assistant", on_delete=models.SET_NULL, null=True, blank=True, related_name="evaluation_cases",
        help_text="Who answers it; empty means the default assistant.",
    )
    expected_answer = models.TextField(blank=True)
    alternative_answers = models.JSONField(default=list, blank=True, help_text="Other answers that count as right.")
    expected_sources = models.JSONField(default=list, blank=True)
    must_contain = models.JSONField(default=list, blank=True)
    must_not_contain = models.JSONField(default=list, blank=True)
    expect_refusal = models.BooleanField(
        default=False, help_text="The right answer is that the documents do not say."
    )
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    groups = ArrayField(
        models.CharField(max_length=150), default=list, blank=True,
        help_text="The groups of the user it is asked as (the asker's when it was made from a message).",
    )
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.MANUAL)
    external_id = models.CharField(max_length=200, blank=True, help_text="Its id in an imported set.")
    source_message = models.ForeignKey(
        "chat.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["-created_at"], name="evaluation_case_recent")]

    def __str__(self) -> str:
        return self.question[:80]

    @property
    def expected_answers(self) -> list[str]:
        return [a for a in [self.expected_answer, *self.alternative_answers] if isinstance(a, str) and a.strip()]


class EvaluationProfile(models.Model):
    """Named overrides of the answer and search settings, for runs to compare (assistant/evaluation/profiles.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="{SETTING: value} for the settings it changes.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvaluationRun(models.Model):
    """One scoring of a set of cases, with the configuration it ran under."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", pgettext_lazy("evaluation run", "Finished")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        COMMAND = "command", _("Command line")
        PAGE = "page", _("Started on the page")
        SCHEDULE = "schedule", _("Nightly schedule")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.COMMAND)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    tag = models.CharField(max_length=50, blank=True)
    assistant = models.ForeignKey(
        "chat.Assistant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Only the cases of this assistant.",
    )
    answered_by = models.ForeignKey(
        "chat.Assistant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Every case answered by this assistant instead of its own (A/B).",
    )
    judge = models.BooleanField(default=False)
    profile = models.ForeignKey(
        EvaluationProfile, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs",
        help_text="The settings profile it ran with (its name and settings are also kept in config).",
    )
    overrides = models.JSONField(default=dict, blank=True,
                                 help_text="Settings changed for this run: its profile's, then --set's.")
    config = models.JSONField(default=dict, blank=True, help_text="Model, embedding, search, prompts, commit.")
    case_ids = models.JSONField(default=list, blank=True, help_text="The cases it runs, fixed when it starts.")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="Means over the cases, per metric.")
    baseline = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    regressions = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.label or f"run {str(self.id)[:8]}"


class CaseResult(models.Model):
    """What one case got in one run: the answer, its sources, the scores and the timings."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(EvaluationCase, on_delete=models.SET_NULL, null=True, related_name="results")
    case_key = models.CharField(max_length=64, help_text="The case's id when it ran (kept if it is deleted).")
    question = models.TextField()
    answer = models.TextField(blank=True)
    status = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    sources = models.JSONField(default=list, blank=True, help_text="The documents the answer saw, cited first.")
    steps = models.JSONField(default=list, blank=True, help_text="The tool calls: [{tool, connector, status}].")
    metrics = models.JSONField(default=dict, blank=True)
    failures = models.JSONField(default=list, blank=True, help_text="The checks it failed.")
    passed = models.BooleanField(default=False)
    judge = models.JSONField(default=dict, blank=True, help_text="The judge's grades and reasons.")
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(default=0)
    model_ms = models.PositiveIntegerField(default=0, help_text="Time spent waiting on the model server.")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "case_key"], name="one_result_per_case_and_run")]

    def __str__(self) -> str:
        return f"{self.case_key} in {self.run_id}"
