from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "assistant.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Revoke API tokens / end sessions when a password changes or an account is disabled
        # (why a save hook: assistant/accounts/credentials.py).
        from assistant.accounts import credentials, departures

        credentials.connect_signals()
        # Remove the library folders of a user deleted by any path (assistant/accounts/departures.py).
        departures.connect_signals()
