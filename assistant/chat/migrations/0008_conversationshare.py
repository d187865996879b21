import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('chat', '0007_assistant_tools'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ConversationShare',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('conversation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='shares', to='chat.conversation')),
                ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('group', models.ForeignKey(blank=True, help_text='The group it is shared with (or empty for a colleague share).', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='conversations_shared', to='auth.group')),
                ('user', models.ForeignKey(blank=True, help_text='The colleague it is shared with (or empty for a group share).', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='conversations_shared', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['created_at'],
                'constraints': [
                    models.CheckConstraint(condition=models.Q(models.Q(('group__isnull', True), ('user__isnull', False)), models.Q(('group__isnull', False), ('user__isnull', True)), _connector='OR'), name='share_with_user_xor_group'),
                    models.UniqueConstraint(condition=models.Q(('user__isnull', False)), fields=('conversation', 'user'), name='one_share_per_conversation_user'),
                    models.UniqueConstraint(condition=models.Q(('group__isnull', False)), fields=('conversation', 'group'), name='one_share_per_conversation_group'),
                ],
            },
        ),
    ]
