from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "assistant.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Revoke API tokens / end sessions when a password changes or an account is disabled
        # (why a save hook: assistant/accounts/credentials.py).
        from assistant.accounts.credentials import connect_signals

        connect_signals()
