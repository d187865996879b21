# API token scopes, and why and when a token was revoked.
#
# Tokens made before scopes existed could read conversations and ask; they get exactly those
# two scopes (conversations:read, ask), so no client breaks silently after the upgrade. They
# do not get `mcp`: a token for the MCP server is made on purpose. Tokens that were already
# revoked keep their date and an empty reason (who revoked them was not recorded).

from django.conf import settings
from django.db import migrations, models


EXISTING_TOKEN_SCOPES = ["conversations:read", "ask"]


def give_existing_tokens_read_and_ask(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    ApiToken.objects.update(scopes=EXISTING_TOKEN_SCOPES)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='notice_pending',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='revoked_reason',
            field=models.CharField(blank=True, choices=[
                ('owner', 'revoked by you'), ('admin', 'revoked by an administrator'),
                ('password_changed', 'your password changed'), ('account_disabled', 'your account was disabled'),
            ], default='', max_length=20),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='scopes',
            field=models.JSONField(
                blank=True, default=list,
                help_text='What the token may do (assistant.accounts.scopes); empty: nothing.',
            ),
        ),
        migrations.AddIndex(
            model_name='apitoken',
            index=models.Index(
                condition=models.Q(('notice_pending', True)), fields=['user'], name='apitoken_notice_pending',
            ),
        ),
        migrations.RunPython(give_existing_tokens_read_and_ask, migrations.RunPython.noop),
    ]
