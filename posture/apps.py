from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PostureConfig(AppConfig):
    name = "posture"

    def ready(self) -> None:
        from posture import schema  # noqa: F401  (registers OpenAPI extensions)

        # After every migrate and every flush, like Django's own permissions.
        post_migrate.connect(_roles_ensure, sender=self)


def _roles_ensure(sender, **kwargs) -> None:
    from posture.services import roles_ensure

    roles_ensure()
