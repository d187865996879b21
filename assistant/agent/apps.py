from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "assistant.agent"
    label = "agent"

    def ready(self) -> None:
        from assistant.agent import tools  # noqa: F401  (registers the knowledge tools)
