from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GenbotConfig(AppConfig):
    name = "genbot"
    verbose_name = "genbot operations"

    def ready(self) -> None:
        from .redaction import install_excepthooks
        from .roles import ensure_roles

        install_excepthooks()

        post_migrate.connect(ensure_roles, dispatch_uid="genbot.ensure_roles")
