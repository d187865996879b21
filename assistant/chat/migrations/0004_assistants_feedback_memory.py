# Assistants (with the default one), feedback on answers and its exports, opt-in memory.

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DEFAULT_NAME = "General assistant"
DEFAULT_DESCRIPTION = "Answers from every source you may see, with citations."


def create_default_assistant(apps, schema_editor):
    Assistant = apps.get_model("chat", "Assistant")
    if not Assistant.objects.filter(is_default=True).exists():
        Assistant.objects.update_or_create(
            name=DEFAULT_NAME, defaults={"description": DEFAULT_DESCRIPTION, "is_default": True, "is_active": True}
        )


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0003_conversation_sidebar_message_tree"),
        ("connectors", "0002_sync_pipeline"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Assistant",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100, unique=True)),
                ("description", models.CharField(blank=True, help_text="One line shown to users in the picker.", max_length=300)),
                ("instructions", models.TextField(blank=True, help_text="Added to the system prompt, e.g. the tone, the audience, what to focus on.")),
                ("temperature", models.FloatField(blank=True, help_text="0 to 2; empty: the server default (LLM_TEMPERATURE).", null=True)),
                ("max_tokens", models.PositiveIntegerField(blank=True, help_text="Longest answer in tokens; empty: LLM_MAX_TOKENS.", null=True)),
                ("model_name", models.CharField(blank=True, help_text="A model the model server offers; empty: LLM_MODEL.", max_length=200)),
                ("is_default", models.BooleanField(default=False, help_text="Answers new conversations. Exactly one is the default.")),
                ("is_active", models.BooleanField(default=True, help_text="Inactive assistants are hidden from the picker.")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("connectors", models.ManyToManyField(blank=True, help_text="The data sources it searches. None selected: every source the user may see.", related_name="assistants", to="connectors.connector")),
            ],
            options={
                "ordering": ["-is_default", "name"],
                "constraints": [
                    models.UniqueConstraint(condition=models.Q(("is_default", True)), fields=("is_default",), name="one_default_assistant"),
                    models.CheckConstraint(condition=models.Q(("temperature__isnull", True), models.Q(("temperature__gte", 0), ("temperature__lte", 2)), _connector="OR"), name="assistant_temperature_range"),
                ],
            },
        ),
        migrations.AddField(
            model_name="conversation",
            name="assistant",
            field=models.ForeignKey(blank=True, help_text="Who answers in this conversation; empty means the default assistant.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="conversations", to="chat.assistant"),
        ),
        migrations.CreateModel(
            name="Feedback",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("rating", models.CharField(choices=[("up", "Helpful"), ("down", "Not helpful")], max_length=10)),
                ("comment", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("message", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="feedback", to="chat.message")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="feedback", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name_plural": "feedback",
                "ordering": ["-updated_at"],
                "indexes": [models.Index(fields=["rating", "-updated_at"], name="feedback_rating_recent")],
                "constraints": [models.UniqueConstraint(fields=("message", "user"), name="one_feedback_per_user_message")],
            },
        ),
        migrations.CreateModel(
            name="FeedbackExport",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("username", models.CharField(max_length=150)),
                ("filters", models.JSONField(blank=True, default=dict)),
                ("row_count", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("user", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.CreateModel(
            name="MemoryPreference",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("enabled", models.BooleanField(default=False)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="memory_preference", to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.CreateModel(
            name="Memory",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("text", models.CharField(max_length=500)),
                ("origin", models.CharField(choices=[("command", "Said in the chat"), ("tool", "Saved by the model"), ("manual", "Added on the memories page")], default="command", max_length=20)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="memories", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name_plural": "memories",
                "ordering": ["created_at"],
                "indexes": [models.Index(fields=["user", "created_at"], name="memory_user_created")],
            },
        ),
        migrations.RunPython(create_default_assistant, migrations.RunPython.noop),
    ]
