from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit ledger"

    def ready(self) -> None:
        # After every migrate and every flush: Posture's own chain always exists.
        post_migrate.connect(_internal_source_ensure, sender=self)


def _internal_source_ensure(sender, **kwargs) -> None:
    from audit.services import internal_source_ensure

    internal_source_ensure()
