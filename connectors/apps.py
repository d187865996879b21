from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
    verbose_name = "Connectors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from connectors import checks  # noqa: F401 - registers the system checks
        from connectors.sources import operator_policy

        operator_policy.set_provider(policy_from_settings)


def policy_from_settings():
    """The operator's settings as the plain data sources get (read at each use: tests override them)."""
    from django.conf import settings

    from connectors.sources.operator_policy import OperatorPolicy, ProtectedDatabase

    protected = tuple(
        ProtectedDatabase(
            host=str(db.get("HOST") or ""),
            port=int(db.get("PORT") or 5432),
            name=str(db.get("NAME") or ""),
            user=str(db.get("USER") or ""),
            password=str(db.get("PASSWORD") or ""),
        )
        for db in settings.DATABASES.values()
    )
    return OperatorPolicy(
        data_roots=tuple(settings.CONNECTOR_DATA_DIR),
        allowed_db_hosts=tuple(settings.CONNECTOR_ALLOWED_DB_HOSTS),
        protected_databases=protected,
        upload_root=str(settings.UPLOAD_ROOT),
    )
