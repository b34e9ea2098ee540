from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PostureConfig(AppConfig):
    name = "posture"

    def ready(self) -> None:
        from audit.signals import events_appended
        from posture import schema  # noqa: F401  (registers OpenAPI extensions)

        # After every migrate and every flush, like Django's own permissions.
        post_migrate.connect(_roles_ensure, sender=self)
        post_migrate.connect(_frameworks_ensure, sender=self)
        events_appended.connect(_rollups_enqueue)


def _roles_ensure(sender, **kwargs) -> None:
    from posture.services import roles_ensure

    roles_ensure()


def _frameworks_ensure(sender, **kwargs) -> None:
    from posture.catalogue import frameworks_ensure

    frameworks_ensure()


def _rollups_enqueue(sender, *, source_id: int, **kwargs) -> None:
    from posture.tasks import rollups_enqueue

    rollups_enqueue(source_id=source_id)
