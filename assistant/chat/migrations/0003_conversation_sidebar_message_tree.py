# Sidebar (pin, soft delete with undo, title source) and message branches (parent pointer,
# active leaf). Existing conversations become one straight branch ending at their last message.

import django.db.models.deletion
from django.db import migrations, models


def link_existing(apps, schema_editor):
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    for conversation in Conversation.objects.all().iterator():
        previous = None
        for message in Message.objects.filter(conversation=conversation).order_by("created_at", "id"):
            if previous is not None and message.parent_id is None:
                Message.objects.filter(id=message.id).update(parent=previous)
            previous = message
        title_source = "default" if conversation.title == "New conversation" else "user"
        Conversation.objects.filter(id=conversation.id).update(
            active_leaf=previous, title_source=title_source
        )


class Migration(migrations.Migration):

    dependencies = [
        ("chat", "0002_attachment_attachmentchunk"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="children",
                to="chat.message",
                help_text="The message this one follows: an answer's question, a question's previous answer.",
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="title_source",
            field=models.CharField(
                choices=[("default", "Default"), ("question", "From the first question"),
                         ("model", "Written by the model"), ("user", "Renamed by the user")],
                default="default", max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="pinned_at",
            field=models.DateTimeField(blank=True, null=True, help_text="Pinned conversations are listed first."),
        ),
        migrations.AddField(
            model_name="conversation",
            name="deleted_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="Deleted by its user: hidden, restorable for a while, then purged."
            ),
        ),
        migrations.AddField(
            model_name="conversation",
            name="active_leaf",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                to="chat.message",
                help_text="Last message of the branch shown (regenerated answers and edited questions branch off).",
            ),
        ),
        migrations.RunPython(link_existing, migrations.RunPython.noop),
    ]
