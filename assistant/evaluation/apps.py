from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """Evaluation cases from real use, scored runs of them, the CI gate and the staff pages.

    It sits above the chat (it runs the chat's own answer pipeline): nothing below imports it."""

    name = "assistant.evaluation"
    label = "evaluation"
    default_auto_field = "django.db.models.BigAutoField"
