from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "assistant.chat"
    label = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assistant import checks  # noqa: F401  (registers the system checks)
        from assistant.chat import memory_tools  # noqa: F401  (registers remember and forget)
